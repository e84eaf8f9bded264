"""MemoryConsolidation: a periodic "sleep" that trains an episodic store's key encoder between PPO iterations.

What it consolidates, found at fit start:

- every `EpisodicMemory` of the agent that has a key encoder (`key_size`): hippotorch's reward-aware
  contrastive objective (`Consolidator.update`: anchor = a stored entry's acting-time query through the
  online encoder, positive = the next entry of its episode through the momentum target, pairs drawn by
  episode return), then every stored key re-encoded with the moved target and a trained FAISS index
  rebuilt by `rebuild_index`, the same code `FaissIndexRebuild` runs;
- or a `HippocampalReplayBuffer` (the `buffer` argument, or the module's `hippocampal_buffer`): its
  consolidator's steps on the stored episodes.

Finding neither is a `ConfigError` at fit start that says what to add. Logs `consolidation/*`: the loss
terms, steps run, the store's size, entries with a known return, pairs available and their age, the
retrieval quality before and after (`quality_before/*`, `quality_after/*`: same-return neighbours, its
chance level, sharpness) and the index rebuild's figures; with a TensorBoard logger and
`log_embeddings`, the keys go to TensorBoard's projector (metadata: the episode return). Everything a
resumed run needs (sleep count, sampling generator, the consolidators' optimizers and step counts, the
buffer) is in `state_dict`; the encoder and the store ride in the module's own checkpoint.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from lightning_memrl.callbacks.faiss_index_rebuild import rebuild_index
from lightning_memrl.errors import ConfigError
from lightning_memrl.hippocampal.consolidator import Consolidator
from lightning_memrl.hippocampal.replay import HippocampalReplayBuffer
from lightning_memrl.memory.episodic import EpisodicMemory
from lightning_memrl.memory.episodic_sleep import consolidation_pairs, consolidation_stats, store_retrieval_quality


class MemoryConsolidation(L.Callback):
    """Every `every_n_iterations` iterations, run `steps` consolidation steps (see the module doc).

    Args:
        buffer: a replay buffer to consolidate instead of the agent's episodic memories.
        every_n_iterations: sleep period in iterations.
        steps: consolidation steps per sleep.
        batch_size: pairs per consolidation step.
        log_embeddings: write the keys to TensorBoard's projector after each sleep.
        temperature: InfoNCE temperature of the agent's key encoder (hippotorch's README: 0.07).
        reward_weight: weight of the reward-ranked term (hippotorch's README: 0.5).
        lr: Adam learning rate of the key encoder.
        report_quality: log the retrieval quality before and after each sleep.
        quality_k: neighbours per query of the quality figures.
        quality_sample: stored entries that query for the quality figures.
        recall_sample: stored keys that query the rebuilt index for its recall@k (0: skip).
        embedding_sample: most keys written to the projector per sleep.
        seed: seed of the pair sampling.
    """

    def __init__(
        self,
        buffer: HippocampalReplayBuffer | None = None,
        every_n_iterations: int = 10,
        steps: int = 100,
        batch_size: int = 64,
        log_embeddings: bool = True,
        temperature: float = 0.07,
        reward_weight: float = 0.5,
        lr: float = 1e-4,
        report_quality: bool = True,
        quality_k: int = 5,
        quality_sample: int = 256,
        recall_sample: int = 256,
        embedding_sample: int = 1024,
        seed: int = 0,
    ):
        super().__init__()
        if every_n_iterations < 1 or steps < 1 or batch_size < 2:
            raise ConfigError(
                "MemoryConsolidation needs every_n_iterations >= 1, steps >= 1, batch_size >= 2; got "
                f"{every_n_iterations}, {steps}, {batch_size}"
            )
        if not temperature > 0 or not 0.0 <= reward_weight <= 1.0 or not lr > 0:
            raise ConfigError(
                "MemoryConsolidation needs temperature > 0, reward_weight in [0, 1], lr > 0; got "
                f"{temperature}, {reward_weight}, {lr}"
            )
        self.buffer, self.every_n_iterations, self.steps = buffer, every_n_iterations, steps
        self.batch_size, self.log_embeddings = batch_size, log_embeddings
        self.temperature, self.reward_weight, self.lr = temperature, reward_weight, lr
        self.report_quality, self.quality_k, self.quality_sample = report_quality, quality_k, quality_sample
        self.recall_sample, self.embedding_sample, self.seed = recall_sample, embedding_sample, seed
        self.sleeps = 0
        self.generator = torch.Generator().manual_seed(seed)
        self.memories: list[EpisodicMemory] = []
        self.consolidators: list[Consolidator] = []
        self._pending_state: dict[str, Any] | None = None
        self._warned_empty = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every_n_iterations=self.every_n_iterations, steps=self.steps)

    def should_sleep(self, iteration: int) -> tuple[bool, str]:
        """Whether to consolidate after `iteration` (1-based count), and why."""
        if iteration % self.every_n_iterations == 0:
            return True, f"iteration {iteration} is a multiple of {self.every_n_iterations}"
        return False, ""

    # --- what to consolidate ----------------------------------------------------------------------
    def _buffer(self, pl_module: L.LightningModule) -> HippocampalReplayBuffer | None:
        return self.buffer if self.buffer is not None else getattr(pl_module, "hippocampal_buffer", None)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        buffer = self._buffer(pl_module)
        episodic = [m for m in pl_module.modules() if isinstance(m, EpisodicMemory)]
        self.memories = [m for m in episodic if m.key_encoder is not None] if buffer is None else []
        if buffer is None and not self.memories:
            raise ConfigError(_nothing_to_consolidate(episodic))
        if buffer is not None and buffer.consolidator is None:
            raise ConfigError(
                "MemoryConsolidation: the replay buffer has no consolidator; build it with "
                "HippocampalReplayBuffer(..., consolidator=Consolidator(encoder))"
            )
        self.consolidators = [
            Consolidator(
                m.key_encoder, temperature=self.temperature, reward_weight=self.reward_weight, lr=self.lr,
                refresh_every=0,
            )
            for m in self.memories
        ]  # fmt: skip
        if self._pending_state is not None:
            self._apply_state(self._pending_state, buffer)
            self._pending_state = None

    # --- the sleep --------------------------------------------------------------------------------
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.should_sleep(trainer.current_epoch + 1)[0]:
            return
        buffer = self._buffer(pl_module)
        with torch.enable_grad():
            if buffer is not None:
                metrics = {f"consolidation/{k}": v for k, v in self._sleep_buffer(buffer).items()}
            else:
                metrics = {}
                for i, (memory, consolidator) in enumerate(zip(self.memories, self.consolidators, strict=True)):
                    suffix = "" if len(self.memories) == 1 else f"_{i}"
                    figures = self._sleep_memory(memory, consolidator)
                    metrics.update({f"consolidation/{k}{suffix}": v for k, v in figures.items()})
        self.sleeps += 1
        metrics["consolidation/sleeps"] = float(self.sleeps)
        pl_module.log_dict(metrics, batch_size=1)
        if self.log_embeddings:
            self._write_embeddings(trainer, buffer)

    def _sleep_buffer(self, buffer: HippocampalReplayBuffer) -> dict[str, float]:
        return buffer.consolidate(self.steps, self.batch_size, report_quality=self.report_quality, top_k=self.quality_k)

    def _sleep_memory(self, memory: EpisodicMemory, consolidator: Consolidator) -> dict[str, float]:
        """Train the key encoder on pairs from the store, re-encode the keys, rebuild a trained index."""
        figures = consolidation_stats(memory)
        quality = torch.Generator().manual_seed(self.seed * 100_003 + self.sleeps)  # the same queries before/after
        if self.report_quality:
            before = store_retrieval_quality(memory, self.quality_k, self.quality_sample, quality)
            figures.update({f"quality_before/{k}": v for k, v in before.items()})
        terms: dict[str, list[float]] = {}
        for _ in range(self.steps):
            pairs = consolidation_pairs(memory, self.batch_size, self.generator)
            if pairs is None:
                break
            for name, value in consolidator.update(*pairs).items():
                terms.setdefault(name, []).append(float(value))
        steps_run = len(terms.get("loss", []))
        figures["steps"] = float(steps_run)
        figures.update({name: sum(values) / len(values) for name, values in terms.items()})
        if steps_run == 0:
            if not self._warned_empty:
                rank_zero_warn(
                    "MemoryConsolidation slept with nothing to learn from: no stored entry has an ended episode "
                    "and a stored successor yet (episodes longer than a rollout end later; capacity too small?)"
                )
                self._warned_empty = True
            return figures
        memory.reencode_keys()
        if memory.store.is_trained:
            rebuilt = rebuild_index(memory, seed=self.sleeps, recall_sample=self.recall_sample, k=self.quality_k)
            figures.update({f"index_{k}": v for k, v in rebuilt.items()})
        if self.report_quality:
            quality.manual_seed(self.seed * 100_003 + self.sleeps)
            after = store_retrieval_quality(memory, self.quality_k, self.quality_sample, quality)
            figures.update({f"quality_after/{k}": v for k, v in after.items()})
        return figures

    def _write_embeddings(self, trainer: L.Trainer, buffer: HippocampalReplayBuffer | None) -> None:
        if buffer is not None:
            tables = [("hippocampal/keys", buffer.store.keys, buffer.store.rewards)]
        else:
            tables = []
            for i, memory in enumerate(self.memories):
                slots = memory.store.ordered_slots()[-self.embedding_sample :]
                tag = "episodic/keys" if len(self.memories) == 1 else f"episodic/keys_{i}"
                tables.append((tag, memory.store.keys[slots].cpu(), memory.store.returns[slots].cpu()))
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if not hasattr(experiment, "add_embedding"):
                continue
            for tag, keys, returns in tables:
                if len(keys):
                    metadata = [f"{r:.3g}" for r in returns.tolist()]  # nan: the episode had not ended
                    experiment.add_embedding(keys, metadata=metadata, global_step=trainer.current_epoch, tag=tag)

    # --- checkpointing ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        consolidators = [c.state_dict() for c in self.consolidators]
        if self._pending_state is not None:  # loaded, not applied yet (no fit started): keep what came
            consolidators = self._pending_state.get("consolidators", [])
        state: dict[str, Any] = {
            "sleeps": self.sleeps,
            "generator": self.generator.get_state(),
            "consolidators": consolidators,
        }
        if self.buffer is not None:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sleeps = state_dict["sleeps"]
        if "generator" in state_dict:
            self.generator.set_state(state_dict["generator"])
        if self.buffer is not None and "buffer" in state_dict:
            self.buffer.load_state_dict(state_dict["buffer"])
            state_dict = {k: v for k, v in state_dict.items() if k != "buffer"}
        self._pending_state = state_dict  # the module's buffer and the consolidators exist once the fit starts

    def _apply_state(self, state: dict[str, Any], buffer: HippocampalReplayBuffer | None) -> None:
        if "buffer" in state and buffer is not None:
            buffer.load_state_dict(state["buffer"])
        saved = state.get("consolidators", [])
        if saved and len(saved) != len(self.consolidators):
            raise ConfigError(
                f"MemoryConsolidation: the checkpoint holds {len(saved)} consolidated memories, this agent has "
                f"{len(self.consolidators)}: resume with the checkpoint's model config"
            )
        for consolidator, s in zip(self.consolidators, saved, strict=False):
            consolidator.load_state_dict(s)


def _nothing_to_consolidate(episodic: list[EpisodicMemory]) -> str:
    if episodic:
        return (
            "MemoryConsolidation has nothing to consolidate: the agent's EpisodicMemory has no key encoder. "
            "Give it one (model.memory.init_args.key_size: 32, e.g. configs/models/memories/episodic_sleep.yaml), "
            "or pass MemoryConsolidation(buffer=HippocampalReplayBuffer(...))"
        )
    return (
        "MemoryConsolidation has nothing to consolidate: the agent has no EpisodicMemory and no "
        "hippocampal_buffer. Add an episodic store with a key encoder (model.memory: "
        "lightning_memrl.memory.EpisodicMemory with key_size, e.g. configs/models/memories/episodic_sleep.yaml), "
        "pass MemoryConsolidation(buffer=HippocampalReplayBuffer(...)), or drop the callback"
    )
