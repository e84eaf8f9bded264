"""What an agent needs to know about an environment to build its input and output layers.

The spec is plain data (ints, floats, strings, tuples), so checkpoints that store it in the agent's
hyperparameters still load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

ACTION_KINDS = ("discrete", "multi_discrete", "multi_binary", "box")


@dataclass(frozen=True)
class EnvSpec:
    """Observation size and action space of a (flattened) environment.

    `EnvSpec(observation_size=5, num_actions=4)` describes a discrete-action env as before; other
    action spaces name their kind:

    - `discrete`: one action in `range(num_actions)`; `action_sizes == (num_actions,)`.
    - `multi_discrete`: one action per component, component i in `range(action_sizes[i])`.
    - `multi_binary`: `action_sizes[0]` independent 0/1 actions.
    - `box`: `action_sizes[0]` real actions within `action_low` .. `action_high` (may be infinite).

    Attributes:
        observation_size: features of one flattened observation.
        num_actions: number of discrete actions (`discrete` only, else `None`).
        action_kind: one of `discrete`, `multi_discrete`, `multi_binary`, `box`.
        action_sizes: per kind, see above.
        action_low: lower bounds of a `box` action, one per component.
        action_high: upper bounds of a `box` action, one per component.
    """

    observation_size: int
    num_actions: int | None = None
    action_kind: str = "discrete"
    action_sizes: tuple[int, ...] = ()
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.action_kind not in ACTION_KINDS:
            raise ValueError(f"EnvSpec.action_kind must be one of {ACTION_KINDS}, got {self.action_kind!r}")
        sizes = tuple(int(s) for s in self.action_sizes)
        if self.action_kind == "discrete":
            if self.num_actions is None and len(sizes) == 1:
                object.__setattr__(self, "num_actions", sizes[0])
            if self.num_actions is None or self.num_actions < 1:
                raise ValueError(f"a discrete EnvSpec needs num_actions >= 1, got {self.num_actions}")
            sizes = (int(self.num_actions),)
        elif self.num_actions is not None:
            raise ValueError(f"num_actions is for discrete actions only; a {self.action_kind} spec uses action_sizes")
        if not sizes or min(sizes) < 1:
            raise ValueError(f"EnvSpec.action_sizes must be positive sizes, got {self.action_sizes}")
        if self.action_kind in ("multi_binary", "box") and len(sizes) != 1:
            raise ValueError(f"a {self.action_kind} EnvSpec has action_sizes == (dim,), got {sizes}")
        object.__setattr__(self, "action_sizes", sizes)
        if self.action_kind == "box":
            low = tuple(float(x) for x in (self.action_low or (-float("inf"),) * sizes[0]))
            high = tuple(float(x) for x in (self.action_high or (float("inf"),) * sizes[0]))
            if len(low) != sizes[0] or len(high) != sizes[0]:
                raise ValueError(f"box bounds need {sizes[0]} values each, got {len(low)} and {len(high)}")
            object.__setattr__(self, "action_low", low)
            object.__setattr__(self, "action_high", high)

    @property
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one env's action: `()` for discrete, `(components,)` otherwise."""
        return () if self.action_kind == "discrete" else (self.action_dim,)

    @property
    def sizes(self) -> tuple[int, ...]:
        """`action_sizes`, also for specs pickled before the field existed (discrete only then)."""
        return self.action_sizes or (int(self.num_actions),)

    @property
    def action_dim(self) -> int:
        """Components of one action (1 for discrete)."""
        if self.action_kind == "multi_discrete":
            return len(self.sizes)
        return 1 if self.action_kind == "discrete" else self.sizes[0]

    @property
    def action_dtype(self) -> torch.dtype:
        """`torch.long` for (multi-)discrete actions, `torch.float32` for binary and box actions."""
        return torch.long if self.action_kind in ("discrete", "multi_discrete") else torch.float32

    @property
    def head_size(self) -> int:
        """Outputs of the policy head: logits (summed over components) or Gaussian means."""
        return sum(self.sizes) if self.action_kind in ("discrete", "multi_discrete") else self.sizes[0]


def env_spec_of(env: Any) -> EnvSpec:
    """The `EnvSpec` of a task: its own `env_spec` where it has one, else discrete from its sizes."""
    spec = getattr(env, "env_spec", None)
    if isinstance(spec, EnvSpec):
        return spec
    return EnvSpec(observation_size=env.observation_size, num_actions=env.num_actions)


# Checkpoints store the spec in the agent's hyperparameters; allow it under `weights_only` loading.
torch.serialization.add_safe_globals([EnvSpec])
