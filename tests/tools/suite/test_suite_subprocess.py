"""`memrl suite` with its default launcher: each run a `python -m lightning_memrl fit` subprocess."""

import subprocess
from pathlib import Path

import pytest

from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.suite import run as suite_module
from lightning_memrl.tools.suite.run import main, read_records
from tests.tools.suite.test_suite import REPO, write_suite


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


def test_jobs_run_several_subprocesses_with_limited_threads_and_record_each(tmp_path):
    suite = write_suite(tmp_path / "tiny.yaml", seeds=[0, 1])
    results = tmp_path / "out.jsonl"
    assert main(["--config", str(suite), "--results", str(results), "--jobs", "2", "--threads", "1"]) == 0
    records = read_records(results)
    assert sorted(r["run_id"] for r in records) == ["delayed_cue/easy/gru/seed0", "delayed_cue/easy/gru/seed1"]
    assert all(r["env_steps"] == 512 for r in records)


def test_jobs_threads_reach_the_child_environment(tmp_path, monkeypatch):
    seen = []

    def fake_run(command, stdout, stderr, env):
        seen.append(env["OMP_NUM_THREADS"])
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(suite_module.subprocess, "run", fake_run)
    suite = write_suite(tmp_path / "tiny.yaml", seeds=[0, 1, 2])
    assert main(["--config", str(suite), "--results", str(tmp_path / "r.jsonl"), "--jobs", "3", "--threads", "2"]) == 1
    assert seen == ["2", "2", "2"]


def test_jobs_and_in_process_do_not_mix(tmp_path):
    suite = write_suite(tmp_path / "tiny.yaml", seeds=[0])
    with pytest.raises(ConfigError, match="--in-process"):
        main(["--config", str(suite), "--jobs", "2", "--in-process"])
