"""Gymnasium spaces <-> flat torch tensors: observation flattening and action conversion.

Observations of every standard space become one float vector per env:

- `Box` (any shape): flattened row-major.
- `Discrete`: one-hot over `n` (after subtracting `start`).
- `MultiDiscrete` (any `nvec` shape): one one-hot per component, concatenated.
- `MultiBinary` (any shape): flattened 0 / 1.
- `Tuple`, `Dict`: their parts flattened and concatenated in the space's order (a `Dict` built
  from a plain dict has its keys sorted by gymnasium, so the order is fixed).

Actions: `Discrete`, `MultiDiscrete`, `MultiBinary` and `Box` (see `lightning_memrl.specs.EnvSpec`);
`Box` actions are clipped to the space's bounds here, at the env boundary.
Any other space raises a `ConfigError` naming it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from lightning_memrl.errors import ConfigError
from lightning_memrl.specs import EnvSpec

SUPPORTED_OBSERVATIONS = "Box, Discrete, MultiDiscrete, MultiBinary, and Tuple / Dict of those"
SUPPORTED_ACTIONS = "Discrete, MultiDiscrete, MultiBinary, Box"


def flat_size(space: spaces.Space) -> int:
    """Features of one flattened observation of `space`; `ConfigError` for an unsupported space."""
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.Tuple):
        return sum(flat_size(s) for s in space.spaces)
    if isinstance(space, spaces.Dict):
        return sum(flat_size(s) for s in space.spaces.values())
    raise ConfigError(
        f"observation space {space} ({type(space).__name__}) is not supported; supported: {SUPPORTED_OBSERVATIONS}. "
        "Wrap the env in a gymnasium ObservationWrapper that maps it to one of those"
    )


def flatten_batch(space: spaces.Space, batch: Any, n: int) -> np.ndarray:
    """A batch of `n` observations of `space` (as a gymnasium vector env returns it) -> `[n, D]` float32."""
    if isinstance(space, (spaces.Box, spaces.MultiBinary)):
        return np.asarray(batch, dtype=np.float32).reshape(n, -1)
    if isinstance(space, spaces.Discrete):
        return _one_hot(np.asarray(batch).reshape(n, 1) - int(space.start), np.array([space.n]))
    if isinstance(space, spaces.MultiDiscrete):
        values = np.asarray(batch).reshape(n, -1) - np.asarray(space.start).reshape(1, -1)
        return _one_hot(values, space.nvec.reshape(-1))
    if isinstance(space, spaces.Tuple):
        return np.concatenate([flatten_batch(s, b, n) for s, b in zip(space.spaces, batch, strict=True)], axis=1)
    if isinstance(space, spaces.Dict):
        return np.concatenate([flatten_batch(s, batch[k], n) for k, s in space.spaces.items()], axis=1)
    flat_size(space)  # raises the error naming the space
    raise AssertionError("unreachable")


def _one_hot(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """`values [n, M]` with component j in `range(sizes[j])` -> `[n, sum(sizes)]` concatenated one-hots."""
    n = values.shape[0]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out = np.zeros((n, int(np.sum(sizes))), dtype=np.float32)
    rows = np.repeat(np.arange(n), values.shape[1])
    out[rows, (values.astype(np.int64) + offsets).reshape(-1)] = 1.0
    return out


def action_spec(observation_size: int, space: spaces.Space) -> EnvSpec:
    """The `EnvSpec` of an env with this (single) action space; `ConfigError` for an unsupported one."""
    if isinstance(space, spaces.Discrete):
        return EnvSpec(observation_size, num_actions=int(space.n))
    if isinstance(space, spaces.MultiDiscrete):
        sizes = tuple(int(x) for x in space.nvec.reshape(-1))
        return EnvSpec(observation_size, action_kind="multi_discrete", action_sizes=sizes)
    if isinstance(space, spaces.MultiBinary):
        return EnvSpec(observation_size, action_kind="multi_binary", action_sizes=(int(np.prod(space.shape)),))
    if isinstance(space, spaces.Box):
        low = tuple(float(x) for x in space.low.reshape(-1))
        high = tuple(float(x) for x in space.high.reshape(-1))
        return EnvSpec(observation_size, action_kind="box", action_sizes=(len(low),), action_low=low, action_high=high)
    raise ConfigError(
        f"action space {space} ({type(space).__name__}) is not supported; supported: {SUPPORTED_ACTIONS}. "
        "Wrap the env in a gymnasium ActionWrapper that maps one of those to it"
    )


def to_env_actions(space: spaces.Space, actions: torch.Tensor) -> np.ndarray:
    """Policy actions `[n]` / `[n, M]` (torch, any device) -> the batched numpy actions the vector env takes."""
    n = actions.shape[0]
    a = actions.detach().cpu().numpy()
    if isinstance(space, spaces.Discrete):
        return (a.reshape(n).astype(np.int64) + int(space.start)).astype(space.dtype)
    if isinstance(space, spaces.MultiDiscrete):
        return (a.reshape(n, *space.nvec.shape).astype(np.int64) + space.start).astype(space.dtype)
    if isinstance(space, spaces.MultiBinary):
        return a.reshape(n, *space.shape).round().astype(space.dtype)
    if isinstance(space, spaces.Box):
        return np.clip(a.reshape(n, *space.shape), space.low, space.high).astype(space.dtype)
    action_spec(0, space)  # raises the error naming the space
    raise AssertionError("unreachable")
