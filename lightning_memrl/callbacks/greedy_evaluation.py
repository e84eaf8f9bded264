"""What the curricula share: the rollout data module, one greedy evaluation agreed by every rank, a JSON summary."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import lightning as L

from lightning_memrl.errors import ConfigError


def rollout_datamodule(trainer: L.Trainer, who: str) -> Any:
    """The trainer's data module, which must evaluate and change its task (`RolloutDataModule`)."""
    dm = getattr(trainer, "datamodule", None)
    if dm is None or not hasattr(dm, "update_task") or not hasattr(dm, "evaluate"):
        raise ConfigError(
            f"{who} needs a data module with update_task() and evaluate() "
            "(lightning_memrl.data.RolloutDataModule); pass it to trainer.fit(model, datamodule)"
        )
    return dm


def greedy_metrics(
    trainer: L.Trainer, pl_module: L.LightningModule, episodes: int | None, task: dict[str, Any] | None = None
) -> dict[str, float]:
    """A greedy evaluation's metrics on the data module's current task (or on the task arguments `task`,
    through `RolloutDataModule.evaluating`, which leaves the training task alone), each averaged over DDP
    ranks (so every rank decides on the same numbers)."""
    dm = trainer.datamodule
    was_training = pl_module.training
    pl_module.eval()
    with dm.evaluating(**task) if task else nullcontext():
        metrics = dm.evaluate(pl_module, episodes)
    pl_module.train(was_training)
    return {k: float(trainer.strategy.reduce(v.float(), reduce_op="mean")) for k, v in metrics.items()}


def greedy_success(
    trainer: L.Trainer, pl_module: L.LightningModule, episodes: int | None, task: dict[str, Any] | None = None
) -> float:
    """The success rate of `greedy_metrics`."""
    return greedy_metrics(trainer, pl_module, episodes, task)["success_rate"]


def env_steps(trainer: L.Trainer) -> int:
    """Env steps collected so far by all ranks."""
    return int(getattr(trainer.datamodule, "env_steps", 0)) * trainer.world_size


def write_summary(trainer: L.Trainer, filename: str, summary: dict[str, Any]) -> None:
    """Write `summary` as JSON into the log dir (global rank zero only)."""
    if not trainer.is_global_zero:
        return
    log_dir = Path(trainer.log_dir or trainer.default_root_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / filename).write_text(json.dumps(summary, indent=2) + "\n")
