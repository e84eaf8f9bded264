"""The controller and memory a benchmark runs, from a name, a config file or a class path.

    --controller gru | transformer | lightning_memrl.controllers.LSTM
    --memory kv_age | configs/models/memories/kv_age.yaml | lightning_memrl.memory.SlotMemory
    --config configs/models/memories/kv_lag.yaml     # any config's `model:` section (several merge in order)

A memory name is a file of `configs/models/memories/`. The memory's `query_size` is set to what the
controller gives it (its output size, plus its input size with `memory_sees_input`, plus `memory_clock`),
whatever the config says, so any memory fits any `--hidden`. The section's other `RecurrentPPO` settings
(`memory_clock`, `lr`, `ent_coef`, ...) go to the agent as they are: a recipe is timed as it trains.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.agents.recurrent_ppo import memory_query_size
from lightning_memrl.controllers import Controller
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import Memory
from lightning_memrl.tools.suite.config import deep_merge

BUILT_HERE = ("controller", "memory", "env_spec")
MODEL_FLAGS = tuple(name for name in inspect.signature(RecurrentPPO).parameters if name not in BUILT_HERE)


def configs_root() -> Path:
    """`configs/` of the working directory, else of the checkout this package runs from."""
    here = Path("configs")
    return here if here.is_dir() else Path(__file__).resolve().parents[3] / "configs"


def _model_section(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"no config file {path}")
    data = yaml.safe_load(path.read_text()) or {}
    model = data.get("model", {}) if isinstance(data, dict) else None
    if not isinstance(model, dict):
        raise ConfigError(f"config {path}: `model` must be a mapping")
    return model


def _is_class_path(text: str) -> bool:
    return "." in text and not text.endswith((".yaml", ".yml")) and "/" not in text


def memory_config(memory: str) -> dict[str, Any]:
    """The `model:` section that `--memory` names (a name, a file or a class path)."""
    if _is_class_path(memory):
        return {"memory": {"class_path": memory}}
    path = Path(memory)
    if path.suffix not in (".yaml", ".yml"):
        path = configs_root() / "models" / "memories" / f"{memory}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise ConfigError(f"no memory named {memory!r}; choose one of {', '.join(names)}, a file or a class path")
    model = _model_section(path)
    if "memory" not in model:
        raise ConfigError(f"config {path} has no model.memory")
    return model


def _import(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"cannot import class_path {class_path!r}: {error}") from error


def instantiate(spec: Any) -> Any:
    """Build `{"class_path": ..., "init_args": {...}}` (nested ones too); anything else is returned as is."""
    if isinstance(spec, list):
        return [instantiate(item) for item in spec]
    if not isinstance(spec, dict) or "class_path" not in spec:
        return spec
    init_args = {key: instantiate(value) for key, value in (spec.get("init_args") or {}).items()}
    return _import(spec["class_path"])(**init_args)


def _with_query_size(spec: Any, size: int) -> Any:
    """`spec` with `query_size` set to `size` in every class (a memory, its members) that takes one."""
    if isinstance(spec, list):
        return [_with_query_size(item, size) for item in spec]
    if not isinstance(spec, dict) or "class_path" not in spec:
        return spec
    init_args = {key: _with_query_size(value, size) for key, value in (spec.get("init_args") or {}).items()}
    if "query_size" in inspect.signature(_import(spec["class_path"])).parameters:
        init_args["query_size"] = size
    return {**spec, "init_args": init_args}


def agent_parts(
    controller: str | None,
    memory: str | None,
    configs: Sequence[str],
    hidden: int,
    factories: dict[str, Callable[[int], Controller]],
) -> tuple[Controller, Memory | None, dict[str, Any], str]:
    """`(controller, memory, model flags, description)` for a benchmark.

    Args:
        controller: a name of `factories` (built with `hidden`), a class path (built with
            `hidden_size=hidden`), or None (the configs' `model.controller`, else `gru`).
        memory: see `memory_config`, or None (the configs' `model.memory`, if any).
        configs: config files whose `model:` sections merge in order (before `memory`).
        hidden: the controller width for names and class paths.
        factories: the benchmarks' controllers by name.
    """
    model: dict[str, Any] = {}
    for path in configs:
        model = deep_merge(model, _model_section(Path(path)))
    if memory is not None:
        model = deep_merge(model, memory_config(memory))
    unknown = sorted(set(model) - {"controller", "memory", *MODEL_FLAGS})
    if unknown:
        raise ConfigError(f"model keys {unknown} are not RecurrentPPO settings; choose from {list(MODEL_FLAGS)}")
    if controller is None and "controller" in model:
        ctl = instantiate(model["controller"])
        name = type(ctl).__name__
    else:
        controller = controller or "gru"
        if controller in factories:
            ctl, name = factories[controller](hidden), controller
        elif _is_class_path(controller):
            ctl, name = instantiate({"class_path": controller, "init_args": {"hidden_size": hidden}}), controller
        else:
            choices = ", ".join(factories)
            raise ConfigError(f"unknown controller {controller!r}; choose one of {choices} or a class path")
    flags = {key: model[key] for key in MODEL_FLAGS if key in model}
    mem = None
    if "memory" in model:
        query_size = memory_query_size(ctl, flags.get("memory_sees_input", False), flags.get("memory_clock", 0))
        mem = instantiate(_with_query_size(model["memory"], query_size))
        name += f" + {type(mem).__name__}" + (f" ({memory})" if memory and not _is_class_path(memory) else "")
    return ctl, mem, flags, name
