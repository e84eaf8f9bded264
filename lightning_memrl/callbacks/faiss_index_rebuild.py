"""FaissIndexRebuild: retrain the episodic memory's IVF-PQ index on a schedule or when its lists drift."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.episodic import EpisodicMemory


class FaissIndexRebuild(L.Callback):
    """Rebuild every `EpisodicMemory` index of the module between PPO iterations.

    A trained index is rebuilt (retrained on the current keys, every entry re-added) after every
    `every_n_iterations` iterations, or when its IVF list imbalance (1.0 = even lists) passes
    `imbalance_threshold`. Logs `episodic/rebuild_seconds`, `episodic/list_imbalance` and
    `episodic/recall@k` (the index against exact search on `recall_sample` stored keys).
    Rebuilding at the iteration's end keeps acting and the next update on one index. An index rebuilt
    by someone else (`MemoryConsolidation`, after re-encoding the keys; list it first in the callback
    stack) restarts the count of iterations, so the two do not rebuild the same keys twice.

    Args:
        every_n_iterations: rebuild period in iterations (`None`: no periodic rebuild).
        imbalance_threshold: rebuild when the list imbalance exceeds it (`None`: off; > 1).
        recall_sample: stored keys used as queries for the recall estimate (0: skip it).
        k: the `k` of recall@k.
    """

    def __init__(
        self,
        every_n_iterations: int | None = 10,
        imbalance_threshold: float | None = None,
        recall_sample: int = 256,
        k: int = 10,
    ):
        super().__init__()
        if every_n_iterations is None and imbalance_threshold is None:
            raise ConfigError("FaissIndexRebuild needs every_n_iterations or imbalance_threshold (or both)")
        if every_n_iterations is not None and every_n_iterations < 1:
            raise ConfigError(f"FaissIndexRebuild.every_n_iterations must be >= 1, got {every_n_iterations}")
        if imbalance_threshold is not None and not imbalance_threshold > 1:
            raise ConfigError(f"FaissIndexRebuild.imbalance_threshold must be > 1, got {imbalance_threshold}")
        self.every_n_iterations, self.imbalance_threshold = every_n_iterations, imbalance_threshold
        self.recall_sample, self.k = recall_sample, k
        self.last_rebuild = 0  # iteration count at the last rebuild
        self.rebuilds = 0
        self.seen_store_rebuilds: int | None = None  # the stores' own rebuild count when last looked at

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            every_n_iterations=self.every_n_iterations, imbalance_threshold=self.imbalance_threshold
        )

    def should_rebuild(self, iteration: int, imbalance: float) -> tuple[bool, str]:
        """Whether to rebuild after `iteration` (1-based count) given the current list imbalance, and why."""
        if self.every_n_iterations is not None and iteration - self.last_rebuild >= self.every_n_iterations:
            return True, f"{iteration - self.last_rebuild} iterations since the last rebuild"
        if self.imbalance_threshold is not None and imbalance > self.imbalance_threshold:
            return True, f"list imbalance {imbalance:.2f} > {self.imbalance_threshold}"
        return False, ""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        memories = [m for m in pl_module.modules() if isinstance(m, EpisodicMemory) and m.store.is_trained]
        if not memories:
            return
        iteration = trainer.current_epoch + 1
        store_rebuilds = sum(m.store.rebuilds for m in memories)
        if self.seen_store_rebuilds is not None and store_rebuilds != self.seen_store_rebuilds:
            self.last_rebuild = iteration  # rebuilt since this callback's last look
        self.seen_store_rebuilds = store_rebuilds
        act = any(self.should_rebuild(iteration, m.store.list_imbalance())[0] for m in memories)
        if not trainer.strategy.reduce_boolean_decision(act, all=False):
            return
        for i, memory in enumerate(memories):
            self._rebuild(pl_module, memory, "" if len(memories) == 1 else f"_{i}")
        self.last_rebuild = iteration
        self.rebuilds += 1
        self.seen_store_rebuilds = sum(m.store.rebuilds for m in memories)

    def _rebuild(self, pl_module: L.LightningModule, memory: EpisodicMemory, suffix: str) -> None:
        metrics = rebuild_index(memory, seed=self.rebuilds, recall_sample=self.recall_sample, k=self.k)
        pl_module.log_dict({f"episodic/{name}{suffix}": value for name, value in metrics.items()}, batch_size=1)

    def state_dict(self) -> dict[str, Any]:
        return {"last_rebuild": self.last_rebuild, "rebuilds": self.rebuilds, "seen": self.seen_store_rebuilds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_rebuild, self.rebuilds = state_dict["last_rebuild"], state_dict["rebuilds"]
        self.seen_store_rebuilds = state_dict.get("seen")


def rebuild_index(memory: EpisodicMemory, *, seed: int, recall_sample: int = 256, k: int = 10) -> dict[str, float]:
    """Retrain `memory`'s IVF-PQ index on its current keys and re-add every entry: the one rebuild path
    (`FaissIndexRebuild` on schedule, `MemoryConsolidation` after re-encoding the keys).

    Returns `rebuild_seconds`, `list_imbalance` and, with `recall_sample` > 0, `recall@k` (the index
    against exact search, queried with `recall_sample` stored keys).
    """
    store = memory.store
    start = time.perf_counter()
    store.rebuild(seed=seed)
    metrics = {"rebuild_seconds": time.perf_counter() - start, "list_imbalance": store.list_imbalance()}
    if recall_sample:
        g = torch.Generator().manual_seed(seed)
        rows = torch.randperm(store.size, generator=g)[:recall_sample].to(store.device)
        slots = (store.first_uid + rows) % store.capacity
        metrics[f"recall@{k}"] = store.recall_at_k(store.keys[slots], k)
    return metrics
