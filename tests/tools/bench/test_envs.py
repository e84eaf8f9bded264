"""`memrl bench envs`: measures every task on tiny sizes, prints the table, writes JSON."""

import json

import pytest

from lightning_memrl.envs import task_names
from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.bench.envs import format_table, main, measure_task


def test_measure_task_reports_positive_throughput():
    row = measure_task("copy_memory", num_envs=8, steps=5, warmup=1, difficulty="easy")
    assert row["task"] == "copy_memory" and row["num_envs"] == 8 and row["horizon"] == 50
    assert row["env_steps_per_s"] > 0 and row["env_steps_per_s"] == pytest.approx(40 / row["seconds"])
    assert "copy_memory" in format_table([row])


def test_main_runs_every_task_and_writes_json(tmp_path, capsys):
    out = tmp_path / "envs.json"
    assert main(["--num-envs", "4", "--steps", "3", "--warmup", "1", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert [row["task"] for row in rows] == task_names()
    for name in task_names():
        assert name in table


def test_unknown_task_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError, match="t_maze"):
        main(["--tasks", "t_maze,tmaze", "--num-envs", "2", "--steps", "1"])
