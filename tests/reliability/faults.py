"""Fault injection for the reliability tests: a callback that kills (SIGKILL) or fails a fit at an exact event.

The event is detected inside the process, so a kill lands at the same point on every run (no wall-clock
timing): `collect` (an env step of an iteration's rollout), `update` (before an optimizer step),
`checkpoint` (once part of a checkpoint file's bytes are on disk), `validate` (an env step of a validation)
and `final_evaluation` (an env step of the greedy evaluation after training). Put it in a config:

    trainer:
      callbacks:
        - class_path: tests.reliability.faults.Fault
          init_args: {at: update, iteration: 2, step: 1}
"""

from __future__ import annotations

import builtins
import functools
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L

EVENTS = ("collect", "update", "checkpoint", "validate", "final_evaluation")
ACTIONS = ("kill", "raise", "hang")


class InjectedFault(RuntimeError):
    """The error a `Fault` with `action: raise` raises."""


class Fault(L.Callback):
    """Kill or fail this process at one event of a fit.

    Args:
        at: one of `EVENTS`.
        iteration: the (0-based) iteration, i.e. Lightning epoch, the event belongs to (not used by `final_evaluation`).
        step: which env step (`collect`, `validate`, `final_evaluation`) or minibatch (`update`), 0-based.
        action: `kill` (SIGKILL: no clean-up at all), `raise` (an `InjectedFault`) or `hang` (sleep for ever:
            a stuck process, for whoever watches it).
        rank: fire only on this global rank (`None`: every rank).
        checkpoint_bytes: for `checkpoint`: kill once this many bytes of the `last.ckpt` being saved (under
            whatever name the save writes it first in the checkpoint dir) reached the disk.
        once: a file; the fault fires only when it does not exist and creates it first (holding this
            process's id), so a rerun of the same config (a suite or study resuming) goes through.
        only_seed: fire only in a run whose `data.seed` is this.
    """

    def __init__(
        self,
        at: str,
        iteration: int = 0,
        step: int = 0,
        action: str = "kill",
        rank: int | None = None,
        checkpoint_bytes: int = 4096,
        once: str | None = None,
        only_seed: int | None = None,
    ):
        if at not in EVENTS or action not in ACTIONS:
            raise ValueError(f"at must be one of {EVENTS} and action one of {ACTIONS}, got {at!r}, {action!r}")
        self.at, self.iteration, self.step, self.action = at, iteration, step, action
        self.rank, self.checkpoint_bytes, self.once, self.only_seed = rank, checkpoint_bytes, once, only_seed

    # --- when --------------------------------------------------------------------------------------
    def _armed(self, trainer: L.Trainer, at: str, iteration: int | None = None) -> bool:
        if at != self.at or (iteration is not None and iteration != self.iteration):
            return False
        if self.rank is not None and trainer.global_rank != self.rank:
            return False
        if self.only_seed is not None and trainer.datamodule.seed != self.only_seed:
            return False
        return not (self.once and Path(self.once).exists())

    def fire(self) -> None:
        if self.once:
            Path(self.once).write_text(str(os.getpid()))
        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        while self.action == "hang":
            time.sleep(1)
        raise InjectedFault(f"injected fault at {self.at}, iteration {self.iteration}, step {self.step}")

    # --- hooks -------------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._armed(trainer, "collect", trainer.current_epoch):
            _fire_at_step(trainer.datamodule.collector.env, self.step, self.fire)

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        batch = trainer.fit_loop.epoch_loop.batch_progress.current.ready - 1
        if self._armed(trainer, "update", trainer.current_epoch) and batch == self.step:
            self.fire()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._armed(trainer, "validate", trainer.current_epoch):
            _fire_at_step(trainer.datamodule.eval_env, self.step, self.fire)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _restore_step(trainer.datamodule.eval_env)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._armed(trainer, "final_evaluation"):
            _fire_at_step(trainer.datamodule.eval_env, self.step, self.fire)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self._armed(trainer, "checkpoint", trainer.current_epoch) and self.action == "kill":
            directory = Path(trainer.checkpoint_callback.dirpath).resolve()
            _kill_when_written(directory, "last.ckpt", self.checkpoint_bytes, self.fire)


def _fire_at_step(env: Any, step: int, fire: Any) -> None:
    """Make `env.step` call `fire` on its `step`-th call from now (0-based)."""
    original = env.step
    calls = [0]

    @functools.wraps(original)
    def step_then_maybe_fire(actions):
        if calls[0] == step:
            fire()
        calls[0] += 1
        return original(actions)

    step_then_maybe_fire.original = original
    env.step = step_then_maybe_fire


def _restore_step(env: Any) -> None:
    original = getattr(env.step, "original", None)
    if original is not None:
        env.step = original


# --- a kill in the middle of a checkpoint write --------------------------------------------------------
def _kill_when_written(directory: Path, name: str, limit: int, fire: Any) -> None:
    """SIGKILL once `limit` bytes went into a file of `directory` whose name contains `name`.

    Every file opened for binary writing is watched (Lightning's fsspec temp file, a copy into the final
    name, `AtomicCheckpointIO`'s partial file): whichever of them is in the checkpoint dir gets `limit`
    bytes and then the process dies, as a kill during a write would leave it. `shutil.copyfile` is made
    to copy through `open` (not `sendfile`) so that a copy into the dir is watched too.
    """
    real_open = builtins.open

    def watched_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and "w" in mode and "b" in mode:
            path = Path(file).resolve()
            if path.parent == directory and name in path.name:
                return _DyingWriter(handle, limit, fire)
        return handle

    def copyfile(src, dst, *, follow_symlinks=True):
        with real_open(src, "rb") as source, watched_open(dst, "wb") as target:
            target.write(source.read())
        return dst

    builtins.open = watched_open
    shutil.copyfile = copyfile


class _DyingWriter:
    """A binary file that dies (`fire`) as soon as `limit` bytes have been written to it, after writing them."""

    def __init__(self, handle: Any, limit: int, fire: Any):
        self._handle, self._limit, self._fire, self._written = handle, limit, fire, 0

    def write(self, data: bytes) -> int:
        room = self._limit - self._written
        if len(data) >= room:
            self._handle.write(bytes(data[:room]))
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._fire()
        self._written += len(data)
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _DyingWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.close()
