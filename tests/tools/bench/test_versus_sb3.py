"""`memrl bench versus_sb3`: both agents at equal env steps, one record each, one table."""

import json

import pytest
import yaml

from lightning_memrl.tools.bench.versus_sb3 import DEFAULT_CONFIG, main, run_sb3, table


def test_both_agents_run_at_equal_env_steps_and_the_table_shows_them(tmp_path, capsys):
    pytest.importorskip("sb3_contrib")  # the [envs] extra
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["data"].update(num_envs=2, rollout_steps=64, num_minibatches=2, eval_envs=3)  # 128 steps an iteration
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump(config))
    out = tmp_path / "runs.jsonl"
    args = ["--env", "gym:CartPole-v1", "--steps", "256", "--seeds", "0", "--eval-episodes", "3",
            "--config", str(small), "--root", str(tmp_path / "runs"), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["agent"] for r in records] == ["ours", "sb3-contrib RecurrentPPO"]
    assert all(r["env_steps"] == 256 and r["episodes"] >= 3 and r["cpu_s"] > 0 for r in records)
    printed = capsys.readouterr().out
    assert "| gym:CartPole-v1 | ours | 1 | 256 |" in printed
    assert "| gym:CartPole-v1 | sb3-contrib RecurrentPPO | 1 | 256 |" in printed
    assert main(["--table", str(out)]) == 0  # the table again, from the records
    assert capsys.readouterr().out.strip() == printed.strip().split("\n", 2)[-1].strip()


def test_the_table_averages_seeds_per_env_and_agent():
    recs = [
        {"env": "e", "agent": "a", "env_steps": 10, "return": r, "wall_s": 2.0, "sps": 5.0, "cpu_s": 1.0}
        for r in (0.0, 1.0)
    ]
    assert "| e | a | 2 | 10 | 0.500 (0.000 to 1.000) | 2 | 5 | 10 |" in table(recs)


def test_sb3_runs_on_a_multidiscrete_observation():
    """sb3 sizes a MultiDiscrete observation as a numpy int, which torch's LSTM refused (popgym CountRecall)."""
    pytest.importorskip("sb3_contrib")
    pytest.importorskip("popgym")  # the [envs] extra
    record = run_sb3("gym:popgym:popgym-CountRecallEasy-v0", [], steps=128, seed=0, episodes=1)
    assert record["env_steps"] == 128 and record["episodes"] == 1
