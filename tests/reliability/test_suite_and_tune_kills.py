"""`memrl suite` and `memrl tune` killed in the middle of a run: run again, they keep what finished and
finish what did not, with the results an uninterrupted run has."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from lightning_memrl.tools.main import main
from lightning_memrl.tools.suite.records import append_record, read_records
from tests.reliability.helpers import TINY, assert_same_weights
from tests.reliability.processes import run_memrl

FAULT = "tests.reliability.faults.Fault"


def _suite(path: Path, tiny_config: Path, fault: dict | None, seeds: list[int]) -> Path:
    overrides = {"trainer.max_epochs": 4, "trainer.enable_progress_bar": False}
    if fault is not None:
        overrides["trainer.callbacks"] = [{"class_path": FAULT, "init_args": fault}]
    suite = {
        "name": "killed",
        "base_configs": [str(tiny_config)],
        "root_dir": str(path.parent / "runs"),
        "tasks": ["delayed_cue"],
        "difficulties": ["easy"],
        "controllers": [{"name": "gru", **TINY["model"]["controller"]}],
        "seeds": seeds,
        "overrides": overrides,
        "task_overrides": {"delayed_cue": {"data.env_kwargs": TINY["data"]["env_kwargs"]}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def test_a_suite_killed_mid_grid_keeps_finished_runs_and_continues_the_partial_one(tiny_config, tmp_path):
    fault = {"at": "update", "iteration": 2, "step": 1, "only_seed": 1, "once": str(tmp_path / "fired")}
    suite = _suite(tmp_path / "suite.yaml", tiny_config, fault, seeds=[0, 1])
    results = tmp_path / "runs" / "results.jsonl"
    args = ["suite", "--config", str(suite), "--in-process"]
    assert run_memrl(args, tmp_path / "killed.log") == -9  # the suite process itself died mid-run
    (first,) = read_records(results)
    assert first["seed"] == 0

    assert main(args) == 0
    records = read_records(results)
    assert [r["seed"] for r in records] == [0, 1]
    assert records[0] == first  # kept, not run again
    seed1 = Path(records[1]["log_dir"])
    commands = [line for line in (seed1 / "fit.log").read_text().splitlines() if line.startswith("$ memrl fit")]
    assert len(commands) == 2 and "--ckpt_path" in commands[1] and "--ckpt_path" not in commands[0]

    # the continued run equals the same run never interrupted
    clean = _suite(tmp_path / "clean" / "suite.yaml", tiny_config, None, seeds=[1])
    assert main(["suite", "--config", str(clean), "--in-process"]) == 0
    (reference,) = read_records(tmp_path / "clean" / "runs" / "results.jsonl")
    for key in ("success", "return", "env_steps"):
        assert records[1][key] == reference[key], key
    assert_same_weights(seed1 / "checkpoints" / "last.ckpt", Path(reference["log_dir"]) / "checkpoints" / "last.ckpt")


def test_a_results_line_cut_short_by_a_crash_is_dropped_and_its_run_recorded_again(tiny_config, tmp_path, capsys):
    suite = _suite(tmp_path / "suite.yaml", tiny_config, None, seeds=[0])
    results = tmp_path / "runs" / "results.jsonl"
    assert main(["suite", "--config", str(suite), "--in-process"]) == 0
    (record,) = read_records(results)
    results.write_text(results.read_text()[:-40])  # the machine died while the line was written

    assert main(["suite", "--config", str(suite), "--in-process"]) == 0
    assert "cut short" in capsys.readouterr().err
    (again,) = read_records(results)
    assert again["run_id"] == record["run_id"] and again["return"] == record["return"]
    append_record(results, {"run_id": "x"})
    assert [r["run_id"] for r in read_records(results)] == [record["run_id"], "x"]


def test_a_killed_suite_takes_the_fit_it_was_running_with_it(tiny_config, tmp_path):
    """A subprocess run whose suite died stops (it would otherwise go on writing into the run dir that the
    next `memrl suite` continues)."""
    marker = tmp_path / "hanging"
    fault = {"at": "update", "iteration": 1, "action": "hang", "once": str(marker)}
    suite = _suite(tmp_path / "suite.yaml", tiny_config, fault, seeds=[0])
    from tests.reliability.processes import _CONTEXT, _memrl_main

    suite_process = _CONTEXT.Process(
        target=_memrl_main, args=(["suite", "--config", str(suite), "--threads", "1"], str(tmp_path / "suite.log"), {})
    )
    suite_process.start()
    fit_pid = _wait_for_pid(marker, timeout=120)
    suite_process.kill()
    suite_process.join()
    assert _gone(fit_pid, timeout=15), f"the fit (pid {fit_pid}) outlived its suite"


def _wait_for_pid(marker: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text():
            return int(marker.read_text())
        time.sleep(0.2)
    raise TimeoutError(f"{marker} did not appear in {timeout} s")


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return False


optuna = pytest.importorskip("optuna", reason="memrl tune needs the [tune] extra (optuna)")


def test_a_study_killed_mid_trial_retries_that_trial_and_finishes(tiny_config, tmp_path):
    fault = tmp_path / "fault.yaml"
    kill = {"at": "update", "iteration": 1, "once": str(tmp_path / "fired")}
    fault.write_text(yaml.safe_dump({"trainer": {"callbacks": [{"class_path": FAULT, "init_args": kill}]}}))
    search = tmp_path / "search.yaml"
    search.write_text(
        yaml.safe_dump(
            {
                "metric": "val/episode_length",
                "direction": "minimize",
                "pruner": {"type": "none"},
                "sampler": {"type": "random", "seed": 0},
                "params": {"model.lr": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}},
            }
        )
    )
    root = tmp_path / "study"
    args = ["tune", "--config", str(tiny_config), "--config", str(fault), "--search", str(search)]
    args += ["--n-trials", "2", "--root", str(root), "--", "--trainer.max_epochs", "2"]
    assert run_memrl(args, tmp_path / "killed.log") == -9

    assert main(args) == 0
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{root / 'study.db'}")
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.COMPLETE]
    assert study.trials[1].user_attrs["retry_of"] == 0 and study.trials[1].params == study.trials[0].params
    assert (root / "best.yaml").exists()
