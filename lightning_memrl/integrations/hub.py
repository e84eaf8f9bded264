"""Hub export: save agents and episode stores to a directory, push it to / load it from the Hugging Face Hub.

A saved directory holds `config.json` (what it is) and `weights.pt` (a `state_dict`, loaded with
`weights_only=True`). `pretrained` arguments are a local directory or a Hub repo id.

    save_pretrained(agent, "out/agent")                     # any nn.Module (RecurrentPPO, memories)
    load_pretrained_into(RecurrentPPO(GRU(128), env_spec=spec), "out/agent")
    save_pretrained(buffer.store, "out/store", push_to_hub=True, repo_id="me/corridor-memory")
    store = load_memory_store("me/corridor-memory")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from lightning_utilities.core.imports import RequirementCache
from torch import nn

from lightning_memrl.errors import MissingDependencyError
from lightning_memrl.hippocampal.store import MemoryStore

_HUB_AVAILABLE = RequirementCache("huggingface_hub")
CONFIG_NAME, WEIGHTS_NAME = "config.json", "weights.pt"


def _hub() -> Any:
    if not _HUB_AVAILABLE:
        raise MissingDependencyError("the Hub needs huggingface_hub: pip install 'lightning-memrl[hub]'")
    import huggingface_hub

    return huggingface_hub


def save_pretrained(
    obj: nn.Module | MemoryStore, save_directory: str | Path, *, push_to_hub: bool = False, repo_id: str | None = None
) -> Path:
    """Write `obj` (a module or a `MemoryStore`) to `save_directory`; optionally upload it to `repo_id`."""
    path = Path(save_directory)
    path.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, MemoryStore):
        config = {"kind": "memory_store", "embed_dim": obj.embed_dim, "capacity": obj.capacity}
        weights = obj.state_dict()
    elif isinstance(obj, nn.Module):
        config = {"kind": "module", "class": f"{type(obj).__module__}.{type(obj).__qualname__}"}
        weights = obj.state_dict()
    else:
        raise TypeError(f"save_pretrained saves an nn.Module or a MemoryStore, got {type(obj).__name__}")
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2))
    torch.save(weights, path / WEIGHTS_NAME)
    if push_to_hub:
        if repo_id is None:
            raise ValueError("save_pretrained(push_to_hub=True) needs repo_id='user/name'")
        hub = _hub()
        hub.HfApi().create_repo(repo_id, exist_ok=True)
        hub.HfApi().upload_folder(repo_id=repo_id, folder_path=str(path))
    return path


def _resolve(pretrained: str | Path) -> tuple[dict[str, Any], Path]:
    path = Path(pretrained)
    if not path.is_dir():  # not a local directory: a Hub repo id
        path = Path(_hub().snapshot_download(repo_id=str(pretrained)))
    config = json.loads((path / CONFIG_NAME).read_text())
    return config, path


def load_pretrained_into(module: nn.Module, pretrained: str | Path) -> nn.Module:
    """Load saved weights into `module` (built with the same configuration); returns it."""
    config, path = _resolve(pretrained)
    expected = f"{type(module).__module__}.{type(module).__qualname__}"
    if config.get("kind") != "module" or config.get("class") != expected:
        raise ValueError(f"{pretrained} holds {config.get('class', config.get('kind'))}, not a {expected}")
    module.load_state_dict(torch.load(path / WEIGHTS_NAME, weights_only=True, map_location="cpu"))
    return module


def load_memory_store(pretrained: str | Path) -> MemoryStore:
    """A `MemoryStore` restored from a directory or Hub repo written by `save_pretrained`."""
    config, path = _resolve(pretrained)
    if config.get("kind") != "memory_store":
        raise ValueError(f"{pretrained} holds a {config.get('kind')!r}, not a memory store")
    store = MemoryStore(config["embed_dim"], config["capacity"])
    store.load_state_dict(torch.load(path / WEIGHTS_NAME, weights_only=True, map_location="cpu"))
    return store
