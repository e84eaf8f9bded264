"""The examples run as users would run them."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_plain_trainer_example_runs_and_learns_a_little(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["plain_trainer.py", "--iterations", "12", "--root-dir", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "plain_trainer.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "greedy success rate after 12 iterations" in out
    success = float(out.strip().rsplit(" ", 1)[-1])
    assert success > 0.25  # chance is 0.25 with 4 cues


def test_sb3_hippocampal_dqn_example_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("stable_baselines3")  # the optional [sb3] extra
    monkeypatch.setattr(sys, "argv", ["sb3_hippocampal_dqn.py", "--steps", "1500"])
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(EXAMPLES / "sb3_hippocampal_dqn.py"), run_name="__main__")
    assert "mean return over 10 episodes" in capsys.readouterr().out
