"""The examples run as users would run them."""

import runpy
import sys
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_plain_trainer_example_learns(tmp_path, capsys):
    """20 iterations (its default) solve the example's task: greedy success 1.0 for seeds 0-4, against 0.24-0.55
    with the advantages zeroed (learning broken: the PPO loss carries no signal); chance is 0.25 with 4 cues."""
    example = runpy.run_path(str(EXAMPLES / "plain_trainer.py"), run_name="example")
    metrics = example["main"](20, str(tmp_path))
    assert "greedy success rate after 20 iterations" in capsys.readouterr().out
    assert metrics["val/success_rate"] >= 0.9


def test_sb3_hippocampal_dqn_example_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("stable_baselines3")  # the optional [sb3] extra
    monkeypatch.setattr(sys, "argv", ["sb3_hippocampal_dqn.py", "--steps", "1500"])
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(EXAMPLES / "sb3_hippocampal_dqn.py"), run_name="__main__")
    assert "mean return over 10 episodes" in capsys.readouterr().out


@pytest.mark.parametrize("previous_action", [False, True])
def test_inspect_answers_scores_each_answer_of_a_checkpoint(previous_action, tmp_path, monkeypatch, capsys):
    """An episode succeeds exactly when all its answers were right: the answers are read at the steps they are due."""
    from lightning_memrl.tools.export import find_config, load_agent
    from lightning_memrl.tools.main import main

    root = tmp_path / "run"
    fit = [
        "fit", "--model.controller", "lightning_memrl.controllers.GRU", "--model.controller.hidden_size", "16",
        "--data.env", "pattern_binding", "--data.env_kwargs", "{horizon: 12, vocab_size: 2, num_patterns: 1}",
        "--data.num_envs", "4", "--data.rollout_steps", "24", "--data.seq_len", "12", "--data.num_minibatches", "2",
        "--data.eval_envs", "2", "--data.eval_episodes", "2", "--data.previous_action", str(previous_action).lower(),
        "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    assert main(fit) == 0
    ckpt = next(root.glob("**/last.ckpt"))
    example = runpy.run_path(str(EXAMPLES / "inspect_answers.py"), run_name="example")
    agent, datamodule = load_agent(ckpt, find_config(ckpt))
    out = example["inspect"](agent, datamodule, 64, 0, {"horizon": 20})
    assert out["right"].shape == (64, 3)  # pattern_len answers
    assert torch.equal(out["success"], out["right"].all(1))
    assert 0 < out["right"].float().mean() < 1  # an untrained agent: some answers right, some wrong
    monkeypatch.setattr(
        sys, "argv", ["inspect_answers.py", "--ckpt_path", str(ckpt), "--set", "horizon=20", "--episodes", "8"]
    )
    runpy.run_path(str(EXAMPLES / "inspect_answers.py"), run_name="__main__")
    assert "right | all before right" in capsys.readouterr().out
