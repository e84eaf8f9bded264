"""The learning benchmark drives memrl fit per seed and summarises results.json."""

import json
from pathlib import Path

from lightning_memrl.tools.main import main

ROOT = Path(__file__).resolve().parents[3]


def test_learning_benchmark_runs_seeds_and_stops_at_target(tmp_path, capsys):
    out = tmp_path / "runs.jsonl"
    args = [
        "bench", "learning", "--config", str(ROOT / "configs" / "quickstart.yaml"), "--seeds", "0", "1",
        "--stop-at", "0.0", "--root", str(tmp_path), "--out", str(out), "--",
        "--data.num_envs", "16", "--data.num_minibatches", "4", "--data.eval_envs", "16",
        "--data.eval_episodes", "16", "--trainer.check_val_every_n_epoch", "1", "--trainer.max_epochs", "5",
        "--model.controller.init_args.hidden_size", "16",
    ]  # fmt: skip
    assert main(args) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seed"] for r in records] == [0, 1]
    assert all(r["iterations"] == 1 for r in records)  # the threshold 0.0 is met at the first evaluation
    assert all(r["env_steps"] == 16 * 128 for r in records)
    assert "2 seeds: success" in capsys.readouterr().out


def test_runs_without_a_success_signal_are_scored_by_return():
    from lightning_memrl.tools.bench.learning import _score

    assert _score({"success_rate": None, "return_mean": 500.0}) == "return 500.0"
    assert _score({"success_rate": 0.5, "return_mean": 0.5}) == "success 0.500"
