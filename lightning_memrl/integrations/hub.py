"""Hub export: save agents and episode stores to a directory, push it to / load it from the Hugging Face Hub.

The directory format and the memory-store functions live in `lightning_memrl.hippocampal.hub` (so the
replay buffer's `save_to_hub` uses them too); this module adds any `nn.Module` (agents, memories).

    save_pretrained(agent, "out/agent")                     # any nn.Module (RecurrentPPO, memories)
    load_pretrained_into(RecurrentPPO(GRU(128), env_spec=spec), "out/agent")
    save_pretrained(buffer.store, "out/store", push_to_hub=True, repo_id="me/corridor-memory")
    store = load_memory_store("me/corridor-memory")
    push_memory_to_hub(buffer.store, repo_id="me/corridor-memory")   # hippotorch's names
    store = load_memory_from_hub("me/corridor-memory")
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lightning_memrl.hippocampal.hub import (
    WEIGHTS_NAME,
    load_memory_from_hub,
    load_memory_store,
    push_memory_to_hub,
    read_directory,
    save_memory_store,
    upload_directory,
    write_directory,
)
from lightning_memrl.hippocampal.store import MemoryStore

__all__ = [
    "load_memory_from_hub",
    "load_memory_store",
    "load_pretrained_into",
    "push_memory_to_hub",
    "save_pretrained",
]


def save_pretrained(
    obj: nn.Module | MemoryStore, save_directory: str | Path, *, push_to_hub: bool = False, repo_id: str | None = None
) -> Path:
    """Write `obj` (a module or a `MemoryStore`) to `save_directory`; optionally upload it to `repo_id`."""
    if push_to_hub and repo_id is None:
        raise ValueError("save_pretrained(push_to_hub=True) needs repo_id='user/name'")
    if isinstance(obj, MemoryStore):
        path = save_memory_store(obj, save_directory)
    elif isinstance(obj, nn.Module):
        config = {"kind": "module", "class": f"{type(obj).__module__}.{type(obj).__qualname__}"}
        path = write_directory(save_directory, config, obj.state_dict())
    else:
        raise TypeError(f"save_pretrained saves an nn.Module or a MemoryStore, got {type(obj).__name__}")
    if push_to_hub:
        upload_directory(path, repo_id)
    return path


def load_pretrained_into(module: nn.Module, pretrained: str | Path) -> nn.Module:
    """Load saved weights into `module` (built with the same configuration); returns it."""
    config, path = read_directory(pretrained)
    expected = f"{type(module).__module__}.{type(module).__qualname__}"
    if config.get("kind") != "module" or config.get("class") != expected:
        raise ValueError(f"{pretrained} holds {config.get('class', config.get('kind'))}, not a {expected}")
    module.load_state_dict(torch.load(path / WEIGHTS_NAME, weights_only=True, map_location="cpu"))
    return module
