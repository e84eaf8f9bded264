"""MemoryConsolidation: a periodic "sleep" phase that trains the hippocampal encoder."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from lightning_memrl.errors import ConfigError
from lightning_memrl.hippocampal.replay import HippocampalReplayBuffer


class MemoryConsolidation(L.Callback):
    """Every `every_n_iterations` iterations, run `steps` consolidation steps on the stored episodes.

    The buffer is the `buffer` argument, or else the module's `hippocampal_buffer` attribute. Logs
    `consolidation/loss` (and its terms); with a TensorBoard logger and `log_embeddings`, the store's
    keys are written as an embedding projection (metadata: episode return). The buffer's full state
    (episodes, encoder, optimizer) is part of this callback's `state_dict`, so a resumed run
    continues with the same memory.

    Args:
        buffer: the replay buffer to consolidate (default: `pl_module.hippocampal_buffer`).
        every_n_iterations: sleep period in iterations.
        steps: consolidation steps per sleep.
        batch_size: pairs per consolidation step.
        log_embeddings: write the keys to TensorBoard's projector after each sleep.
    """

    def __init__(
        self,
        buffer: HippocampalReplayBuffer | None = None,
        every_n_iterations: int = 10,
        steps: int = 100,
        batch_size: int = 64,
        log_embeddings: bool = True,
    ):
        super().__init__()
        if every_n_iterations < 1 or steps < 1 or batch_size < 2:
            raise ConfigError(
                "MemoryConsolidation needs every_n_iterations >= 1, steps >= 1, batch_size >= 2; got "
                f"{every_n_iterations}, {steps}, {batch_size}"
            )
        self.buffer, self.every_n_iterations, self.steps = buffer, every_n_iterations, steps
        self.batch_size, self.log_embeddings = batch_size, log_embeddings
        self.sleeps = 0
        self._pending_state: dict[str, Any] | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every_n_iterations=self.every_n_iterations, steps=self.steps)

    def should_sleep(self, iteration: int) -> tuple[bool, str]:
        """Whether to consolidate after `iteration` (1-based count), and why."""
        if iteration % self.every_n_iterations == 0:
            return True, f"iteration {iteration} is a multiple of {self.every_n_iterations}"
        return False, ""

    def _buffer(self, pl_module: L.LightningModule) -> HippocampalReplayBuffer | None:
        buffer = self.buffer if self.buffer is not None else getattr(pl_module, "hippocampal_buffer", None)
        if buffer is not None and self._pending_state is not None:
            buffer.load_state_dict(self._pending_state)
            self._pending_state = None
        return buffer

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        buffer = self._buffer(pl_module)
        if buffer is None or buffer.consolidator is None or not self.should_sleep(trainer.current_epoch + 1)[0]:
            return
        with torch.enable_grad():
            metrics = buffer.consolidate(self.steps, self.batch_size)
        self.sleeps += 1
        if metrics:
            pl_module.log_dict({f"consolidation/{k}": v for k, v in metrics.items()}, batch_size=1)
        self._write_embeddings(trainer, buffer)

    def _write_embeddings(self, trainer: L.Trainer, buffer: HippocampalReplayBuffer) -> None:
        if not self.log_embeddings or len(buffer.store) == 0:
            return
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_embedding"):
                experiment.add_embedding(
                    buffer.store.keys,
                    metadata=[f"{r:.3g}" for r in buffer.store.rewards.tolist()],
                    global_step=trainer.current_epoch,
                    tag="hippocampal/keys",
                )

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"sleeps": self.sleeps}
        if self.buffer is not None:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sleeps = state_dict["sleeps"]
        if "buffer" in state_dict:
            if self.buffer is not None:
                self.buffer.load_state_dict(state_dict["buffer"])
            else:
                self._pending_state = state_dict["buffer"]
