"""Helpers of the reliability tests: a tiny fit config, fault configs, results and weights to compare."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]

#: 4 envs x 8 steps, a GRU of 8: an iteration takes milliseconds; 6 iterations, validation after 2, 4, 6
TINY = {
    "data": {
        "env": "delayed_cue", "env_kwargs": {"horizon": 4, "num_cues": 2}, "num_envs": 4, "rollout_steps": 8,
        "seq_len": 8, "num_minibatches": 2, "update_epochs": 2, "eval_envs": 4, "eval_episodes": 4, "seed": 3,
    },
    "model": {"controller": {"class_path": "lightning_memrl.controllers.GRU", "init_args": {"hidden_size": 8}}},
    "trainer": {
        "max_epochs": 6, "check_val_every_n_epoch": 2, "accelerator": "cpu", "devices": 1, "logger": False,
        "enable_progress_bar": False, "enable_model_summary": False,
    },
}  # fmt: skip
#: what differs between two runs of one config: the clock
TIMING_FIELDS = ("wall_s", "sps", "config")


def fault_config(path: Path, **fault: Any) -> Path:
    """A config file adding a `tests.reliability.faults.Fault(**fault)` callback; returns `path`."""
    callback = {"class_path": "tests.reliability.faults.Fault", "init_args": fault}
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": [callback]}}))
    return path


def results(run_dir: Path) -> dict[str, Any]:
    """`results.json` of a run without its timing fields."""
    record = json.loads((run_dir / "results.json").read_text())
    return {k: v for k, v in record.items() if k not in TIMING_FIELDS}


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{different} differ between {a} and {b}"


def other_filesystem_tmpdir(path: Path) -> dict[str, str]:
    """`TMPDIR` on another filesystem than `path` when there is one (/dev/shm), else nothing.

    Lightning's own writer stages a checkpoint in the temp dir and, across filesystems, copies it into its
    name: the case in which a kill truncates it.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != path.stat().st_dev:
        return {"TMPDIR": str(shm)}
    return {}
