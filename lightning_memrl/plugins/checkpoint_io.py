"""Checkpoint files that survive a kill, and a clear error for a file that is not a usable checkpoint.

Lightning's `TorchCheckpointIO` writes through an fsspec transaction whose temporary file lives in the
system temp dir: where that is another filesystem than the run's (a node-local `/tmp`, runs on shared
storage) the commit is a copy into the checkpoint's name, and a process killed during it leaves a
truncated `last.ckpt` that no later `--ckpt_path last` can read. `AtomicCheckpointIO` writes the new
file next to its final name, flushes it to disk and renames it over the old one (`os.replace`, atomic
on POSIX and Windows): a kill at any moment leaves the previous checkpoint or the new one, never half
of one. `memrl fit` uses it (see `MemRLCLI`); in your own Lightning code pass
`Trainer(plugins=[AtomicCheckpointIO()])`.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch import Trainer
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightning_memrl.errors import ConfigError

#: keys every checkpoint written by `Trainer.save_checkpoint` has
LIGHTNING_KEYS = ("state_dict", "pytorch-lightning_version")


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` with atomic local writes and loads that name the file and the fix on failure.

    A local save streams `torch.save` into `<dir>/.<name>.partial`, fsyncs it, renames it onto `<name>`
    and fsyncs the dir. Remote paths (`s3://...`) are saved by Lightning as before.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)  # its TypeError / remote write
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(target)
        try:
            with open(partial, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    def load_checkpoint(self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None) -> Any:
        if not _is_local_file_protocol(path):
            return super().load_checkpoint(path, map_location, weights_only)
        return read_checkpoint(path, map_location, weights_only)


def use_atomic_checkpoints(trainer: Trainer) -> None:
    """Give `trainer` atomic checkpoint writes, unless it was given a checkpoint plugin of its own."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()


def partial_path(path: Path) -> Path:
    """Where a checkpoint is written before it is renamed to `path` (hidden, not `*.ckpt`: never taken for one)."""
    return path.with_name(f".{path.name}.partial")


def read_checkpoint(
    path: _PATH, map_location: Any | None = "cpu", weights_only: bool | None = None, mmap: bool = False
) -> dict[str, Any]:
    """Load a Lightning checkpoint; `ConfigError` naming the file and what to do when it is not one.

    Args:
        path: a local checkpoint file.
        map_location: as for `torch.load`.
        weights_only: as for `torch.load` (`None`: torch's default).
        mmap: map the tensors from the file instead of reading them (a cheap look at a large checkpoint).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist; pass the path of a .ckpt file, or `last`")
    if not zipfile.is_zipfile(path):  # torch.save's format is a zip archive whose directory is at its end
        raise ConfigError(
            f"checkpoint {path} is truncated or not a PyTorch file ({path.stat().st_size} bytes, no zip directory): "
            f"a process killed while writing it, or another kind of file. {_alternatives(path)}"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only, mmap=mmap)
    except Exception as err:
        raise ConfigError(
            f"checkpoint {path} could not be loaded ({type(err).__name__}: {_first_line(err)}). {_alternatives(path)}"
        ) from err
    missing = [key for key in LIGHTNING_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing:
        found = sorted(map(str, checkpoint))[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ConfigError(
            f"{path} is a PyTorch file but not a Lightning checkpoint (no {missing}; it holds {found}). "
            "Pass a .ckpt written by `memrl fit` (<run dir>/checkpoints/last.ckpt); to start from bare weights, "
            "load them into the model in your own code (`model.load_state_dict(torch.load(path))`)"
        )
    return checkpoint


def check_fits(path: _PATH, problems: list[str]) -> None:
    """`ConfigError` naming checkpoint `path` when `problems` (why it cannot continue this run) is not empty."""
    if not problems:
        return
    path = Path(path)
    config = path.parent.parent / "config.yaml"  # <log dir>/checkpoints/x.ckpt beside <log dir>/config.yaml
    with_config = f"its config ({config})" if config.is_file() else "the config it was trained with"
    raise ConfigError(
        f"checkpoint {path} does not fit this run: {'; '.join(problems)}. "
        f"Continue it with {with_config}, or start over without --ckpt_path"
    )


def state_dict_problems(saved: dict[str, Any], expected: dict[str, Any], limit: int = 4) -> list[str]:
    """How a checkpoint's `state_dict` differs from a model's (missing / unexpected keys, shapes), at most
    `limit` examples of each; `[]` when it loads."""
    problems = []
    missing = [key for key in expected if key not in saved]
    unexpected = [key for key in saved if key not in expected]
    shapes = [
        f"{key} {list(saved[key].shape)} -> {list(value.shape)}"
        for key, value in expected.items()
        if key in saved and _both_tensors(saved[key], value) and saved[key].shape != value.shape
    ]
    kinds = ("parameters missing", "unknown parameters", "parameter shapes (checkpoint -> here)")
    for what, items in zip(kinds, (missing, unexpected, shapes), strict=True):
        if items:
            more = f" and {len(items) - limit} more" if len(items) > limit else ""
            problems.append(f"{what}: {', '.join(items[:limit])}{more}")
    return problems


def _both_tensors(a: Any, b: Any) -> bool:
    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)  # extra states can be anything


def _alternatives(path: Path) -> str:
    others = sorted(p.name for p in path.parent.glob("*.ckpt") if p != path and p.is_file())
    where = f"another checkpoint of that run ({', '.join(others)} in {path.parent})" if others else "another checkpoint"
    return f"Resume from {where}, or start over without --ckpt_path"


def _first_line(err: Exception, limit: int = 300) -> str:
    text = " ".join(str(err).split()) or repr(err)
    return text if len(text) <= limit else text[:limit] + "..."


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
