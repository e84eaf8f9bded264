"""`memrl suite table`: one line per cell, the later record of a seed, a curriculum's stage and time to target."""

import json

import pytest

from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.suite.table import main, render, table_rows


def _record(controller="memory_agent", seed=0, success=0.5, **fields):
    return {
        "task": "delayed_cue",
        "difficulty": "medium",
        "controller": controller,
        "seed": seed,
        "success": success,
        "return": success,
        "env_steps": 1_000_000 * (seed + 1),
        "wall_s": 100.0 * (seed + 1),
        "sps": 1000.0,
        **fields,
    }


def _curriculum(stage, to_target=None, wall_to_target=None):
    return {
        "target_success": 0.9,
        "env_steps_to_target": to_target,
        "wall_s_to_target": wall_to_target,
        "curriculum_stage": stage,
        "curriculum_stages": 9,
    }


def _columns(rows):
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_a_cell_shows_the_stages_reached_and_the_env_steps_and_wall_time_to_target():
    records = [
        _record(seed=0, success=0.95, **_curriculum(9, 409_600, 120.4)),
        _record(seed=1, success=0.97, **_curriculum(9, 737_280, 300.6)),
        _record(seed=2, success=0.10, **_curriculum(4)),  # stopped at stage 4 of 9
    ]
    (row,) = _columns(table_rows(records))
    assert row["seeds"] == "3" and row["success"] == "0.673 +- 0.497" and row["range"] == "0.100-0.970"
    assert row["stage"] == "4-9/9"
    assert row["to target"] == "2/3 at 0.41M-0.74M"
    assert row["wall s to target"] == "120-301"
    assert row["env steps"] == "1.00M-3.00M" and row["wall s"] == "100-300"


def test_runs_without_a_curriculum_or_that_never_reached_it_say_so():
    records = [
        _record(controller="gru", seed=0, **_curriculum(2)),
        _record(controller="lstm", seed=0),  # no curriculum at all
    ]
    gru, lstm = _columns(table_rows(records))
    assert (gru["stage"], gru["to target"], gru["wall s to target"]) == ("2/9", "0/1", "-")
    assert (lstm["stage"], lstm["to target"], lstm["wall s to target"]) == ("-", "-", "-")


def test_a_seed_recorded_twice_counts_once_the_later_record():
    records = [_record(seed=0, success=0.1, **_curriculum(3)), _record(seed=0, success=0.9, **_curriculum(9, 2e6, 50))]
    (row,) = _columns(table_rows(records))
    assert row["seeds"] == "1" and row["success"] == "0.900 +- 0.000" and row["to target"] == "1/1 at 2.00M"


def test_cells_sort_so_arms_of_a_task_sit_side_by_side(tmp_path, capsys):
    records = [
        _record(controller="memory_agent", **_curriculum(9, 1e6, 10)),
        {**_record(controller="gru", **_curriculum(1)), "task": "copy_memory"},
        _record(controller="gru", **_curriculum(2)),
    ]
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["--results", str(results), "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| task | difficulty | controller |") and lines[0].endswith("| wall s to target |")
    cells = [line.split(" | ")[:3] for line in lines[2:]]
    assert cells == [
        ["| copy_memory", "medium", "gru"],
        ["| delayed_cue", "medium", "gru"],
        ["| delayed_cue", "medium", "memory_agent"],
    ]
    assert render(table_rows(records)).splitlines()[0].split()[:3] == ["task", "difficulty", "controller"]


def test_an_empty_results_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no records"):
        main(["--results", str(tmp_path / "missing.jsonl")])
