"""`memrl suite` with its default launcher: each run a `python -m lightning_memrl fit` subprocess."""

from pathlib import Path

from lightning_memrl.benchmarks.suite import main, read_records
from tests.benchmarks.test_suite import REPO, write_suite


def test_a_subprocess_run_logs_its_command_and_is_recorded(tmp_path, capsys):
    suite = write_suite(tmp_path / "tiny.yaml", seeds=[3])
    results = tmp_path / "out.jsonl"
    assert main(["--config", str(suite), "--results", str(results)]) == 0
    (record,) = read_records(results)
    assert record["run_id"] == "delayed_cue/easy/gru/seed3" and record["env_steps"] == 512
    run_dir = Path(record["log_dir"])
    log = (run_dir / "fit.log").read_text()
    assert log.startswith(f"$ memrl fit --config {REPO}/configs/quickstart.yaml")
    assert "memrl: logs, checkpoints and results.json in" in log  # the child's own output
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and list(run_dir.glob("events.out.tfevents.*"))
    assert "success" in capsys.readouterr().out
