"""Gymnasium spaces <-> flat torch tensors: observation flattening and action conversion.

Observations of every standard space become one float vector per env, and `observation_parts`
describes its columns (`lightning_memrl.specs.ObservationPart`) so the agent's encoder can rebuild
each part (a CNN for images, an embedding for discrete values, per key for Dict / Tuple):

- `Box` (any shape): flattened row-major, raw values. An image is a `Box` of 3 or 4 dimensions
  (`HWC`, `CHW`, or stacked frames `SHWC` / `SCHW`), or of 2 dimensions with `uint8` values
  (grayscale `HW`); `uint8` images are scaled by `1/255` in the encoder, not here.
- `Discrete`: one-hot over `n` (after subtracting `start`).
- `MultiDiscrete` (any `nvec` shape): one one-hot per component, concatenated.
- `MultiBinary` (any shape): flattened 0 / 1.
- `Tuple`, `Dict`: their parts flattened and concatenated in the space's order (a `Dict` built
  from a plain dict has its keys sorted by gymnasium, so the order is fixed).
- Text parts of a Dict / Tuple (`Text`, MiniGrid's `mission`): dropped, with a logged note.
- A Dict key `action_mask` (`MultiBinary` or a 0 / 1 `Box`, one entry per logit): the action mask
  (MaskablePPO convention: 1 = allowed), kept in the vector, read by the policy head, never encoded.

Actions: `Discrete`, `MultiDiscrete`, `MultiBinary` and `Box` (see `lightning_memrl.specs.EnvSpec`);
`Box` actions are clipped to the space's bounds here, at the env boundary.
Any other space raises a `ConfigError` naming it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from lightning_memrl.errors import ConfigError
from lightning_memrl.specs import MIN_IMAGE_SIDE, EnvSpec, ObservationPart

log = logging.getLogger(__name__)
ACTION_MASK_KEY = "action_mask"
_NOTED: set[tuple[str, ...]] = set()  # text keys already reported as dropped

SUPPORTED_OBSERVATIONS = "Box, Discrete, MultiDiscrete, MultiBinary, and Tuple / Dict of those (Text parts dropped)"
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
    if isinstance(space, (spaces.Tuple, spaces.Dict)):
        return sum(flat_size(s) for _, _, s in _members(space))
    raise ConfigError(
        f"observation space {space} ({type(space).__name__}) is not supported; supported: {SUPPORTED_OBSERVATIONS}. "
        "Wrap the env in a gymnasium ObservationWrapper that maps it to one of those"
    )


def is_text(space: spaces.Space) -> bool:
    """A space of strings (`Text`, or a custom one such as MiniGrid's `MissionSpace`)."""
    if isinstance(space, spaces.Text):
        return True
    if isinstance(
        space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Tuple, spaces.Dict)
    ):
        return False
    try:
        return isinstance(space.sample(), str)
    except Exception:  # a space that cannot sample is not one we can read either
        return False


def _members(space: spaces.Tuple | spaces.Dict) -> list[tuple[str, Any, spaces.Space]]:
    """`(name, key, subspace)` of a Tuple's / Dict's members, Text members left out."""
    items = enumerate(space.spaces) if isinstance(space, spaces.Tuple) else space.spaces.items()
    return [(str(key), key, sub) for key, sub in items if not is_text(sub)]


def image_layout(space: spaces.Box) -> str | None:
    """The axes of an image `Box` (`hw`, `hwc`, `chw`, `shwc`, `schw`), or `None` when it is no image.

    Channels are the short axis: last when it is not longer than the first (`7x7x3`, `84x84x4`),
    first otherwise (`3x84x84`); a 4-dimensional Box is a stack of such frames (gymnasium's
    `FrameStackObservation`), stacked frames first. A Box smaller than `MIN_IMAGE_SIDE` in height or
    width is no image (no image encoder reads it): a vector.
    """
    shape = space.shape
    layout = None
    if len(shape) == 2 and space.dtype == np.uint8:
        layout = "hw"
    elif len(shape) == 3:
        layout = "hwc" if shape[2] <= shape[0] else "chw"
    elif len(shape) == 4:
        layout = "s" + ("hwc" if shape[3] <= shape[1] else "chw")
    if layout is None:
        return None
    sides = dict(zip(layout, shape, strict=True))
    return layout if min(sides["h"], sides["w"]) >= MIN_IMAGE_SIDE else None


def observation_parts(space: spaces.Space, name: str = "") -> tuple[ObservationPart, ...]:
    """The parts of `space`'s flat observation, in column order (see the module docstring)."""
    if isinstance(space, spaces.Box):
        layout = image_layout(space)
        if layout is None:
            return (ObservationPart(name, "vector", (flat_size(space),)),)
        scale = 1.0 / 255.0 if space.dtype == np.uint8 else 1.0
        return (ObservationPart(name, "image", space.shape, layout=layout, scale=scale),)
    if isinstance(space, spaces.Discrete):
        return (ObservationPart(name, "discrete", (), sizes=(int(space.n),)),)
    if isinstance(space, spaces.MultiDiscrete):
        return (ObservationPart(name, "discrete", space.nvec.shape, sizes=tuple(space.nvec.reshape(-1))),)
    if isinstance(space, spaces.MultiBinary):
        return (ObservationPart(name, "vector", (flat_size(space),)),)
    if isinstance(space, (spaces.Tuple, spaces.Dict)):
        parts: list[ObservationPart] = []
        for key, _, sub in _members(space):
            path = f"{name}.{key}" if name else key
            if isinstance(space, spaces.Dict) and key == ACTION_MASK_KEY and not name:
                parts.append(_mask_part(sub))
            else:
                parts.extend(observation_parts(sub, path))
        dropped = tuple(
            f"{name}.{k}" if name else str(k)
            for k, sub in (space.spaces.items() if isinstance(space, spaces.Dict) else enumerate(space.spaces))
            if is_text(sub)
        )
        if dropped and dropped not in _NOTED:  # once per process: every env copy and probe has the same space
            _NOTED.add(dropped)
            log.warning(
                "observation keys %s hold text: dropped from the agent's input. To use them, map them to "
                "numbers in a gymnasium ObservationWrapper named in data.wrappers",
                list(dropped),
            )
        return tuple(parts)
    flat_size(space)  # raises the error naming the space
    raise AssertionError("unreachable")


def _mask_part(space: spaces.Space) -> ObservationPart:
    if not isinstance(space, (spaces.MultiBinary, spaces.Box)):
        raise ConfigError(
            f"observation key {ACTION_MASK_KEY!r} must be a MultiBinary or a 0/1 Box with one entry per action, "
            f"got {space}"
        )
    return ObservationPart(ACTION_MASK_KEY, "action_mask", (flat_size(space),))


def flatten_batch(space: spaces.Space, batch: Any, n: int) -> np.ndarray:
    """A batch of `n` observations of `space` (as a gymnasium vector env returns it) -> `[n, D]` float32."""
    if isinstance(space, (spaces.Box, spaces.MultiBinary)):
        return np.asarray(batch, dtype=np.float32).reshape(n, -1)
    if isinstance(space, spaces.Discrete):
        return _one_hot(np.asarray(batch).reshape(n, 1) - int(space.start), np.array([space.n]))
    if isinstance(space, spaces.MultiDiscrete):
        values = np.asarray(batch).reshape(n, -1) - np.asarray(space.start).reshape(1, -1)
        return _one_hot(values, space.nvec.reshape(-1))
    if isinstance(space, (spaces.Tuple, spaces.Dict)):
        columns = [flatten_batch(s, batch[key], n) for _, key, s in _members(space)]
        return np.concatenate(columns, axis=1) if columns else np.zeros((n, 0), dtype=np.float32)
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


def env_spec(observation_space: spaces.Space, action_space: spaces.Space) -> EnvSpec:
    """The `EnvSpec` of an env with these (single) spaces, observation structure included.

    `ConfigError` for an unsupported space, or an action mask whose size does not match the actions.
    """
    parts = observation_parts(observation_space)
    spec = action_spec(flat_size(observation_space), action_space, parts)
    for part in parts:
        discrete = spec.action_kind in ("discrete", "multi_discrete")
        if part.kind == "action_mask" and (not discrete or part.size != spec.head_size):
            raise ConfigError(
                f"the {ACTION_MASK_KEY!r} observation has {part.size} entries; it masks Discrete / "
                f"MultiDiscrete actions with one entry per action value ({spec.action_kind} actions of "
                f"sizes {spec.sizes} here)"
            )
    return spec


def action_spec(observation_size: int, space: spaces.Space, observation: tuple[ObservationPart, ...] = ()) -> EnvSpec:
    """The `EnvSpec` of an env with this (single) action space; `ConfigError` for an unsupported one."""
    obs = {"observation": observation}
    if isinstance(space, spaces.Discrete):
        return EnvSpec(observation_size, num_actions=int(space.n), **obs)
    if isinstance(space, spaces.MultiDiscrete):
        sizes = tuple(int(x) for x in space.nvec.reshape(-1))
        return EnvSpec(observation_size, action_kind="multi_discrete", action_sizes=sizes, **obs)
    if isinstance(space, spaces.MultiBinary):
        return EnvSpec(observation_size, action_kind="multi_binary", action_sizes=(int(np.prod(space.shape)),), **obs)
    if isinstance(space, spaces.Box):
        low = tuple(float(x) for x in space.low.reshape(-1))
        high = tuple(float(x) for x in space.high.reshape(-1))
        return EnvSpec(
            observation_size, action_kind="box", action_sizes=(len(low),), action_low=low, action_high=high, **obs
        )
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
