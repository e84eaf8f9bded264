"""Checks of a gymnasium env's spaces and of what it returns: errors that name the env and the field.

- `checked_spec`: the `EnvSpec` of an env, or a `ConfigError` naming the env, the part of its space that
  cannot be used (unsupported, or with no entries) and the fix.

- `CheckedEnv`, a wrapper on every env copy (it runs inside the worker of an async vector env): an
  observation whose structure differs from the observation space (a missing Dict key, a Tuple of
  another length, an array of another shape, a Discrete value outside its range) raises an
  `ObservationMismatch` naming the field, e.g. `observation['position'] has shape (3,), the space says (4,)`,
  where gymnasium's batching would fail with a bare numpy broadcast error or, for a Discrete value,
  one-hot encode the wrong column.
- `nonfinite_fields`: the fields of a batch of observations that hold NaN or inf, or values that float32
  (the agent's dtype) cannot hold, and the env copies that returned them.

A field is written as Python indexes it: `observation`, `observation['a'][1]`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lightning_memrl.envs.gym_spaces import env_spec, flat_size, is_text
from lightning_memrl.errors import ConfigError
from lightning_memrl.specs import EnvSpec


def checked_spec(name: str, observation_space: spaces.Space, action_space: spaces.Space) -> EnvSpec:
    """The `EnvSpec` of env `name`; `ConfigError` naming the env, the part of a space it cannot use and the fix."""
    try:
        size = flat_size(observation_space)
    except ConfigError as err:
        field = unsupported_field(observation_space, "observation")
        raise ConfigError(f"gym env {name!r}: {field + ' is unsupported: ' if field else ''}{err}") from err
    if size == 0:
        raise ConfigError(
            f"gym env {name!r}: its observation space {observation_space} has no entries, so the agent would see "
            "nothing; give the env an observation (or map it to one in a gymnasium ObservationWrapper)"
        )
    if _size(action_space) == 0:
        raise ConfigError(
            f"gym env {name!r}: its action space {action_space} has no entries; an agent needs at least one action "
            "(or wrap the env in a gymnasium ActionWrapper that supplies them)"
        )
    try:
        return env_spec(observation_space, action_space)
    except ConfigError as err:
        raise ConfigError(f"gym env {name!r}: {err}") from err


def unsupported_field(space: spaces.Space, field: str) -> str | None:
    """The first part of `space` (as `observation['a'][0]`) that `flat_size` rejects, `None` if none is
    (Text parts of a Dict / Tuple are dropped, not rejected)."""
    if isinstance(space, spaces.Dict):
        items = ((f"{field}[{key!r}]", sub) for key, sub in space.spaces.items() if not is_text(sub))
    elif isinstance(space, spaces.Tuple):
        items = ((f"{field}[{index}]", sub) for index, sub in enumerate(space.spaces) if not is_text(sub))
    else:
        try:
            flat_size(space)
        except ConfigError:
            return field
        return None
    return next((found for path, sub in items if (found := unsupported_field(sub, path)) is not None), None)


def _size(space: spaces.Space) -> int | None:
    """Entries of a Box / MultiBinary / MultiDiscrete space (None for other spaces)."""
    if isinstance(space, (spaces.Box, spaces.MultiBinary, spaces.MultiDiscrete)):
        return int(np.prod(space.shape))
    return None


class ObservationMismatch(ValueError):
    """An observation does not fit its space (raised by `CheckedEnv`, re-raised from an async worker)."""


class CheckedEnv(gym.Wrapper):
    """Raise `ObservationMismatch` naming the field when an observation does not fit its space's structure.

    Args:
        env: the env to check (one copy of a vector env).
    """

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        problem = structure_problem(self.observation_space, obs)
        if problem is not None:
            raise ObservationMismatch(f"{problem} (the first observation of an episode)")
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        result = self.env.step(action)
        problem = structure_problem(self.observation_space, result[0])
        if problem is not None:
            raise ObservationMismatch(problem)
        return result


def structure_problem(space: spaces.Space, value: Any, field: str = "observation") -> str | None:
    """Why `value` does not fit `space`'s structure, shapes and discrete ranges (`None` when it does)."""
    if isinstance(space, spaces.Dict):
        if not isinstance(value, dict):
            return f"{field} is a {type(value).__name__}, the space says a dict with keys {list(space.spaces)}"
        missing = [key for key in space.spaces if key not in value]
        if missing:
            return f"{field} lacks the keys {missing} of its space (it has {list(value)})"
        for key, sub in space.spaces.items():
            problem = structure_problem(sub, value[key], f"{field}[{key!r}]")
            if problem is not None:
                return problem
        return None
    if isinstance(space, spaces.Tuple):
        if not isinstance(value, (tuple, list)) or len(value) != len(space.spaces):
            return f"{field} is {_describe(value)}, the space says a tuple of {len(space.spaces)}"
        for index, (sub, part) in enumerate(zip(space.spaces, value, strict=True)):
            problem = structure_problem(sub, part, f"{field}[{index}]")
            if problem is not None:
                return problem
        return None
    if isinstance(space, (spaces.Box, spaces.MultiBinary, spaces.MultiDiscrete)):
        expected = space.shape
        if np.shape(value) != expected:
            return f"{field} has shape {np.shape(value)}, the space says {expected} ({space})"
        if isinstance(space, spaces.MultiDiscrete):
            offset = np.asarray(value) - space.start
            if np.any(offset < 0) or np.any(offset >= space.nvec):
                return f"{field} is {np.asarray(value).tolist()}, outside {space}"
        return None
    if isinstance(space, spaces.Discrete):
        if np.shape(value) != () or not space.start <= int(np.asarray(value)) < space.start + space.n:
            return f"{field} is {_describe(value)}, outside {space}"
        return None
    return None  # spaces the adapter drops or rejects when it is built


def nonfinite_fields(
    space: spaces.Space, batch: Any, n: int, field: str = "observation"
) -> list[tuple[str, list[int], float]]:
    """`(field, copies, an example value)` for each field of a batch of `n` observations (as a gymnasium
    vector env returns them) holding values that are not finite in float32 (NaN, inf, beyond 3.4e38)."""
    if isinstance(space, (spaces.Dict, spaces.Tuple)):
        keys = space.spaces.keys() if isinstance(space, spaces.Dict) else range(len(space.spaces))
        return [
            found for key in keys for found in nonfinite_fields(space.spaces[key], batch[key], n, f"{field}[{key!r}]")
        ]
    if not isinstance(space, spaces.Box) or not np.issubdtype(space.dtype, np.floating):
        return []
    values = np.asarray(batch).reshape(n, -1)
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(values.astype(np.float32))
    copies = np.flatnonzero(bad.any(axis=1))
    if not len(copies):
        return []
    return [(field, copies.tolist(), float(values[bad][0]))]


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
