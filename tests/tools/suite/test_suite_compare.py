"""`memrl suite compare`: per-cell mean +- std, the difference, and the exit code CI gates on."""

import json

import pytest

from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.suite.compare import cell_stats, compare, render
from lightning_memrl.tools.suite.compare import main as compare_main


def _record(task, seed, success, controller="gru", difficulty="easy", env_steps=1000):
    return {
        "run_id": f"{task}/{difficulty}/{controller}/seed{seed}",
        "task": task,
        "difficulty": difficulty,
        "controller": controller,
        "seed": seed,
        "success": success,
        "return": success,
        "env_steps": env_steps,
        "wall_s": 1.0,
        "sps": 1000.0,
    }


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


BASELINE = [
    _record("delayed_cue", 0, 0.9),
    _record("delayed_cue", 1, 1.0),
    _record("copy_memory", 0, 0.5),
    _record("copy_memory", 1, 0.7),
]


def test_cell_stats_mean_and_sample_std_over_seeds_last_record_wins():
    stats = cell_stats([*BASELINE, _record("copy_memory", 1, 0.3)])  # seed 1 re-recorded
    assert stats[("delayed_cue", "easy", "gru")].mean == pytest.approx(0.95)
    assert stats[("delayed_cue", "easy", "gru")].std == pytest.approx(0.0707107, abs=1e-6)
    copy = stats[("copy_memory", "easy", "gru")]
    assert (copy.mean, copy.n) == (pytest.approx(0.4), 2)
    assert str(copy) == "0.400 +- 0.141 (n=2)"


def test_compare_flags_regressions_beyond_the_tolerance_only():
    results = [
        _record("delayed_cue", 0, 0.88),
        _record("delayed_cue", 1, 0.98),  # mean 0.93: -0.02, within 0.05
        _record("copy_memory", 0, 0.4),
        _record("copy_memory", 1, 0.5),  # mean 0.45: -0.15, a regression
        _record("n_back", 0, 0.2),  # not in the baseline
    ]
    rows = {row.cell[0]: row for row in compare(results, BASELINE, tolerance=0.05)}
    assert rows["delayed_cue"].status == "ok" and rows["delayed_cue"].diff == pytest.approx(-0.02)
    assert rows["copy_memory"].status == "REGRESSION" and rows["copy_memory"].diff == pytest.approx(-0.15)
    assert rows["n_back"].status == "new" and rows["n_back"].diff is None
    assert compare(results, BASELINE, tolerance=0.2)[0].status == "ok"
    improved = compare([_record("copy_memory", 0, 0.9)], BASELINE)
    assert {r.cell[0]: r.status for r in improved} == {"copy_memory": "improved", "delayed_cue": "missing"}


def test_lower_is_better_metrics_invert_the_direction():
    slower = [_record("delayed_cue", 0, 0.9, env_steps=2000)]
    rows = compare(slower, [_record("delayed_cue", 0, 0.9, env_steps=1000)], 0.0, "env_steps", higher_is_better=False)
    assert rows[0].status == "REGRESSION"


def test_render_text_and_markdown():
    rows = compare([_record("delayed_cue", 0, 0.5)], BASELINE[:2])
    text = render(rows)
    header = ["task", "difficulty", "controller", "success", "baseline", "success", "diff", "status"]
    assert text.splitlines()[0].split() == header
    assert "0.500 +- 0.000 (n=1)" in text and "-0.450" in text and "REGRESSION" in text
    markdown = render(rows, "markdown").splitlines()
    assert markdown[0].startswith("| task | difficulty |") and markdown[1].startswith("|---|")
    row = "| delayed_cue | easy | gru | 0.500 +- 0.000 (n=1) | 0.950 +- 0.071 (n=2) | -0.450 | REGRESSION |"
    assert markdown[2] == row


def test_cli_exit_code_gates_on_regressions(tmp_path, capsys):
    baseline = _write(tmp_path / "base.jsonl", BASELINE)
    same = _write(tmp_path / "same.jsonl", BASELINE)
    worse = _write(tmp_path / "worse.jsonl", [*BASELINE[:2], _record("copy_memory", 0, 0.1)])
    assert compare_main(["--results", same, "--baseline", baseline]) == 0
    assert "0 regressed beyond 0.05" in capsys.readouterr().out
    assert compare_main(["--results", worse, "--baseline", baseline]) == 1
    assert "1 regressed beyond 0.05" in capsys.readouterr().out
    assert compare_main(["--results", worse, "--baseline", baseline, "--tolerance", "0.6"]) == 0
    partial = _write(tmp_path / "partial.jsonl", BASELINE[:2])
    assert compare_main(["--results", partial, "--baseline", baseline]) == 0
    assert compare_main(["--results", partial, "--baseline", baseline, "--strict"]) == 1


def test_cli_errors_name_the_problem(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ConfigError, match="no records"):
        compare_main(["--results", str(empty), "--baseline", str(empty)])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"task": "x"}\nnot json\n')
    with pytest.raises(ConfigError, match="broken.jsonl:2"):
        compare_main(["--results", str(broken), "--baseline", str(broken)])
    with pytest.raises(ConfigError, match="tolerance"):
        compare(BASELINE, BASELINE, tolerance=-1)
