"""Gymnasium wrappers named in a config (`data.wrappers`), and the action-mask wrapper.

Each entry is a class path with optional `init_args`, as jsonargparse writes objects; every env
copy is wrapped, in list order (the first entry wraps the raw env), before vectorisation:

```yaml
data:
  env: gym:MiniGrid-MemoryS7-v0
  wrappers:
    - class_path: minigrid.wrappers.ImgObsWrapper          # Dict(image, direction, mission) -> the image
    - class_path: gymnasium.wrappers.FrameStackObservation
      init_args: {stack_size: 4}
```

A class path's module is imported before the env is made, so a package that registers its envs on
import (minigrid, popgym, memory_gym) needs no `module:` prefix in `gym:<id>` once one of its
wrappers is named.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

from lightning_memrl.errors import ConfigError

WrapperConfig = dict[str, Any] | str


def resolve_wrapper(config: WrapperConfig) -> Callable[[gym.Env], gym.Env]:
    """`{"class_path": "pkg.mod.Cls", "init_args": {...}}` (or just the path) -> `env -> Cls(env, **init_args)`."""
    if isinstance(config, str):
        config = {"class_path": config}
    if not isinstance(config, dict) or set(config) - {"class_path", "init_args"} or "class_path" not in config:
        raise ConfigError(
            f"a data.wrappers entry is a class path with optional init_args, "
            "e.g. {class_path: gymnasium.wrappers.FrameStackObservation, init_args: {stack_size: 4}}; "
            f"got {config!r}"
        )
    path, init_args = config["class_path"], dict(config.get("init_args") or {})
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(
            f"data.wrappers: cannot import {path!r} ({err}); install its package or fix the path"
        ) from err
    if not callable(cls):
        raise ConfigError(f"data.wrappers: {path!r} is not a class or callable")
    return partial(_wrap, cls, path, init_args)


def _wrap(cls: Callable[..., gym.Env], path: str, init_args: dict[str, Any], env: gym.Env) -> gym.Env:
    try:
        return cls(env, **init_args)
    except TypeError as err:
        raise ConfigError(f"data.wrappers: {path}(env, **{init_args}) failed: {err}") from err


def resolve_wrappers(configs: Sequence[WrapperConfig] | None) -> list[Callable[[gym.Env], gym.Env]]:
    """Every `data.wrappers` entry resolved (their modules imported), in order."""
    return [resolve_wrapper(c) for c in configs or ()]


class InfoActionMask(gym.ObservationWrapper):
    """Moves an env's action mask into the observation, as the Dict key `action_mask`.

    The mask comes from `info["action_mask"]` (as many envs report it) or, where the info has none,
    from the env's `action_masks()` method (sb3-contrib's MaskablePPO convention). A non-Dict
    observation becomes `{"observation": obs, "action_mask": mask}`. Name it in `data.wrappers`:
    `- class_path: lightning_memrl.envs.wrappers.InfoActionMask`.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
            raise ConfigError(f"InfoActionMask masks Discrete / MultiDiscrete actions, got {space}")
        n = int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.sum(space.nvec))
        mask_space = gym.spaces.MultiBinary(n)
        inner = env.observation_space
        members = dict(inner.spaces) if isinstance(inner, gym.spaces.Dict) else {"observation": inner}
        self.observation_space = gym.spaces.Dict({**members, "action_mask": mask_space})
        self._mask = np.ones(n, dtype=np.int8)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._mask = self._read_mask(info)
        return self.observation(obs), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._mask = self._read_mask(info)
        return self.observation(obs), reward, terminated, truncated, info

    def _read_mask(self, info: dict[str, Any]) -> np.ndarray:
        mask = info.get("action_mask")
        if mask is None:
            masks = getattr(self.env.unwrapped, "action_masks", None)
            if masks is None:
                raise ConfigError("InfoActionMask: the env reports no info['action_mask'] and has no action_masks()")
            mask = masks()
        return np.asarray(mask, dtype=np.int8).reshape(-1)

    def observation(self, observation: Any) -> dict[str, Any]:
        members = dict(observation) if isinstance(observation, dict) else {"observation": observation}
        return {**members, "action_mask": self._mask.copy()}
