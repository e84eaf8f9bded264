"""Saved directories and the Hugging Face Hub: the format, hippotorch's `push_memory_to_hub` / `load_memory_from_hub`.

A saved directory holds `config.json` (what it is) and `weights.pt` (a `state_dict`, loaded with
`weights_only=True`). A `pretrained` argument is a local directory or a Hub repo id (downloaded with
`huggingface_hub.snapshot_download`, the `[hub]` extra, only when it is not a local directory).
`lightning_memrl.integrations.hub` writes agents and other modules in the same format.

    push_memory_to_hub(buffer.store, repo_id="me/corridor-memory")   # or buffer.save_to_hub("me/corridor-memory")
    store = load_memory_from_hub("me/corridor-memory")               # or a local directory
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning_utilities.core.imports import RequirementCache

from lightning_memrl.errors import MissingDependencyError
from lightning_memrl.hippocampal.store import MemoryStore

_HUB_AVAILABLE = RequirementCache("huggingface_hub")
CONFIG_NAME, WEIGHTS_NAME = "config.json", "weights.pt"


def hub_client() -> Any:
    """The `huggingface_hub` module (tests replace this function with an offline fake)."""
    if not _HUB_AVAILABLE:
        raise MissingDependencyError("the Hub needs huggingface_hub: pip install 'lightning-memrl[hub]'")
    import huggingface_hub

    return huggingface_hub


def write_directory(path: str | Path, config: dict[str, Any], weights: dict[str, Any]) -> Path:
    """Write `config.json` and `weights.pt` into `path` (created); returns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2))
    torch.save(weights, path / WEIGHTS_NAME)
    return path


def upload_directory(path: str | Path, repo_id: str, *, private: bool = False) -> None:
    """Create the Hub repo `repo_id` if needed and upload the directory into it."""
    api = hub_client().HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(path))


def read_directory(pretrained: str | Path) -> tuple[dict[str, Any], Path]:
    """`(config, directory)` of a local directory, or of a Hub repo id after downloading it."""
    path = Path(pretrained)
    if not path.is_dir():  # not a local directory: a Hub repo id
        path = Path(hub_client().snapshot_download(repo_id=str(pretrained)))
    return json.loads((path / CONFIG_NAME).read_text()), path


def save_memory_store(store: MemoryStore, directory: str | Path) -> Path:
    """Write `store` (episodes, keys, eviction statistics) to `directory`."""
    config = {"kind": "memory_store", "embed_dim": store.embed_dim, "capacity": store.capacity}
    return write_directory(directory, config, store.state_dict())


def load_memory_store(pretrained: str | Path) -> MemoryStore:
    """A `MemoryStore` restored from a directory or Hub repo written by `save_memory_store`."""
    config, path = read_directory(pretrained)
    if config.get("kind") != "memory_store":
        raise ValueError(f"{pretrained} holds a {config.get('kind')!r}, not a memory store")
    store = MemoryStore(config["embed_dim"], config["capacity"])
    store.load_state_dict(torch.load(path / WEIGHTS_NAME, weights_only=True, map_location="cpu"))
    return store


def push_memory_to_hub(memory: MemoryStore, repo_id: str, *, private: bool = False) -> str:
    """Upload `memory` to the Hub repo `repo_id` (hippotorch's name); returns the repo id."""
    with tempfile.TemporaryDirectory() as tmp:
        upload_directory(save_memory_store(memory, tmp), repo_id, private=private)
    return repo_id


def load_memory_from_hub(repo_id: str | Path) -> MemoryStore:
    """The `MemoryStore` of a Hub repo id (or a local directory) written by `push_memory_to_hub` (hippotorch's name)."""
    return load_memory_store(repo_id)
