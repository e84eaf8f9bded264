"""`memrl suite plot`: learning curves from TensorBoard event files and success vs horizon, as PNGs."""

import json
import math

import pytest
from torch.utils.tensorboard import SummaryWriter

from lightning_memrl.errors import MissingDependencyError
from lightning_memrl.tools.suite import plot as suite_plot

HORIZON = {"easy": 50, "medium": 200}


def _fake_suite(root):
    """Event files and records shaped like a suite's: 2 tasks x 2 difficulties x 2 controllers x 2 seeds."""
    records = []
    for task in ("delayed_cue", "copy_memory"):
        for difficulty, horizon in HORIZON.items():
            for controller, speed in (("gru", 1.0), ("lstm", 0.6)):
                for seed in (0, 1):
                    run_id = f"{task}/{difficulty}/{controller}/seed{seed}"
                    writer = SummaryWriter(str(root / run_id))
                    rate = speed * 50 / horizon
                    for it in range(1, 21):
                        writer.add_scalar("time/env_steps", it * 32768, it)
                        writer.add_scalar("rollout/success_rate", 1 - 0.75 * math.exp(-rate * it / 4), it)
                    writer.close()
                    success = 1 - 0.75 * math.exp(-rate * 5) - 0.02 * seed
                    records.append(
                        {
                            "run_id": run_id,
                            "task": task,
                            "difficulty": difficulty,
                            "controller": controller,
                            "seed": seed,
                            "horizon": horizon,
                            "success": success,
                            "log_dir": str(root / run_id),
                        }
                    )
    return records


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_learning_curve_reads_success_against_env_steps(tmp_path):
    _fake_suite(tmp_path)
    steps, success = suite_plot.learning_curve(tmp_path / "delayed_cue/easy/gru/seed0")
    assert steps == [it * 32768 for it in range(1, 21)]
    assert success[0] == pytest.approx(1 - 0.75 * math.exp(-0.25)) and success == sorted(success)
    assert suite_plot.learning_curve(tmp_path / "no_events_here") == ([], [])


def test_plot_writes_both_figures(tmp_path, capsys):
    records = _fake_suite(tmp_path / "runs")
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "plots"
    assert suite_plot.main(["--results", str(results), "--out", str(out)]) == 0
    assert _is_png(out / "learning_curves.png") and _is_png(out / "success_vs_horizon.png")
    assert "wrote" in capsys.readouterr().out


def test_plot_finds_moved_logs_through_logs_dir(tmp_path):
    records = _fake_suite(tmp_path / "moved")
    for record in records:
        record["log_dir"] = "/gone"
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "plots"
    assert suite_plot.plot_learning_curves(records, out.mkdir() or out) is None  # the recorded dirs are gone
    assert suite_plot.main(["--results", str(results), "--logs", str(tmp_path / "moved"), "--out", str(out)]) == 0
    assert _is_png(out / "learning_curves.png")


class _Missing:
    message = "No module named 'matplotlib'"

    def __bool__(self):
        return False


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(suite_plot, "_MATPLOTLIB", _Missing())
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps(_fake_suite(tmp_path)[0]) + "\n")
    with pytest.raises(MissingDependencyError, match=r"lightning-memrl\[plot\]"):
        suite_plot.main(["--results", str(results), "--out", str(tmp_path / "plots")])
