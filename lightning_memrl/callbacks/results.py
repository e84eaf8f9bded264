"""ResultsJson: write the final evaluation and speed of a run to `results.json` in its log dir."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lightning_memrl.callbacks.greedy_evaluation import greedy_metrics


def accelerator_name(device: torch.device | str) -> str:
    """`cpu`, or the CUDA device's name (`NVIDIA H100 80GB HBM3`), for `results.json`'s `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


class ResultsJson(L.Callback):
    """At the end of training (a final greedy evaluation) and after `test`, write `results.json` to the log dir.

    The file holds `stage`, `success_rate` (`null` for envs that report no success), `return_mean`,
    `device` (`cpu` or the CUDA device's name) and `config` (the saved config's path); after `fit` also
    `episodes`, `env_steps` (all ranks), `wall_s` and `sps` (env steps per second of this run); after `test`
    the `checkpoint` tested instead (a test trains nothing: it has no speed).

    Other callbacks take part in the final evaluation after `fit` through two optional methods: a
    callback's `final_evaluation_task() -> dict | None` names task arguments to evaluate on instead of
    the current ones (a curriculum's target, through `RolloutDataModule.evaluating`, which leaves the
    training task and checkpoints alone), and each `results_fields() -> dict` is added to the file (a
    curriculum's env steps and wall time to its target).

    Args:
        filename: name of the file written into `trainer.log_dir`.
        final_eval_episodes: episodes of the greedy evaluation after `fit` (`None`: the data
            module's `eval_episodes`).
    """

    def __init__(self, filename: str = "results.json", final_eval_episodes: int | None = None):
        super().__init__()
        self.filename = filename
        self.final_eval_episodes = final_eval_episodes
        self._started = 0.0
        self._env_steps_at_start = 0
        self.path: Path | None = None
        self.log_dir: Path | None = None
        self._written_this_fit = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # `trainer.log_dir` is a collective under DDP: resolve it here, on every rank.
        self.log_dir = Path(trainer.log_dir or trainer.default_root_dir)

    def _env_steps(self, trainer: L.Trainer) -> int:
        dm = getattr(trainer, "datamodule", None)
        return int(getattr(dm, "env_steps", 0)) * trainer.world_size

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._written_this_fit = False
        self._started = time.perf_counter()
        self._env_steps_at_start = self._env_steps(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # on_train_end, not on_fit_end: by then Lightning has moved the model back to the CPU.
        self._final_evaluation(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._written_this_fit:
            return
        # Training was skipped (a run resumed from a checkpoint that had already finished): evaluate
        # anyway, on the device the envs live on, so the run still has its results.json.
        device = trainer.strategy.root_device
        pl_module.to(device)
        self._final_evaluation(trainer, pl_module)
        pl_module.cpu()

    def _final_evaluation(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        wall = time.perf_counter() - self._started
        task = {}
        for callback in trainer.callbacks:
            if hasattr(callback, "final_evaluation_task"):
                task.update(callback.final_evaluation_task() or {})
        metrics: dict[str, Any] = greedy_metrics(trainer, pl_module, self.final_eval_episodes, task)
        metrics.setdefault("success_rate", None)
        for callback in trainer.callbacks:
            if hasattr(callback, "results_fields"):
                metrics.update(callback.results_fields())
        steps, new_steps = self._env_steps(trainer), self._env_steps(trainer) - self._env_steps_at_start
        speed = {"env_steps": steps, "wall_s": round(wall, 3), "sps": round(new_steps / wall, 1) if wall > 0 else None}
        self._write(trainer, "fit", {**metrics, **speed})
        self._written_this_fit = True

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        cm = trainer.callback_metrics
        success = cm.get("test/success_rate")
        metrics = {
            "success_rate": float(success) if success is not None else None,
            "return_mean": float(cm.get("test/return", torch.tensor(float("nan")))),
            "checkpoint": trainer.ckpt_path,
        }
        self._write(trainer, "test", metrics)

    def _write(self, trainer: L.Trainer, stage: str, metrics: dict[str, Any]) -> None:
        if not trainer.is_global_zero or self.log_dir is None:
            return
        log_dir = self.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        config = log_dir / "config.yaml"
        record = {
            "stage": stage,
            **metrics,
            "device": accelerator_name(trainer.strategy.root_device),
            "config": str(config) if config.exists() else None,
        }
        self.path = log_dir / self.filename
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, self.path)
