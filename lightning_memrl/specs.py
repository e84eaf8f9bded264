"""What an agent needs to know about an environment to build its input and output layers.

The spec is plain data (ints, floats, strings, tuples), so checkpoints that store it in the agent's
hyperparameters still load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

ACTION_KINDS = ("discrete", "multi_discrete", "multi_binary", "box")
OBSERVATION_KINDS = ("vector", "image", "discrete", "action_mask")
IMAGE_LAYOUTS = ("hw", "hwc", "chw", "shw", "shwc", "schw")
#: the least height and width of an image part (the smallest image encoder, the grid CNN, needs it)
MIN_IMAGE_SIDE = 4


@dataclass(frozen=True)
class ObservationPart:
    """One part of a flattened observation: what it is and how to rebuild it from its columns.

    Observations travel as one float vector per env (`[N, D]`, see `EnvSpec.observation_size`); the
    parts, in order, say which columns hold what, so an encoder can unflatten each part:

    - `vector`: `size` features (a `Box` of any shape, `MultiBinary`), as they are.
    - `image`: a `Box` of `shape` flattened row-major; `layout` names its axes (`h`, `w`, `c`
      channels, `s` stacked frames) and `scale` multiplies the raw values (`1/255` for `uint8`).
    - `discrete`: one one-hot per component, component i over `sizes[i]` values (`Discrete`,
      `MultiDiscrete`).
    - `action_mask`: 0 / 1 per logit of the policy head (1 = allowed); not an encoder input.

    Attributes:
        name: the part's key in the observation (`image`, `0` for a Tuple's first item, nested
            keys joined by `.`; empty for an observation that is not a Dict or Tuple).
        kind: one of `vector`, `image`, `discrete`, `action_mask`.
        shape: the part's shape in the env (an image's raw shape, a vector's `(size,)`).
        sizes: `discrete` only: values per component.
        layout: `image` only: one of `hw`, `hwc`, `chw`, `shw`, `shwc`, `schw`.
        scale: `image` only: factor applied to the raw values.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    sizes: tuple[int, ...] = ()
    layout: str = ""
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in OBSERVATION_KINDS:
            raise ValueError(f"ObservationPart.kind must be one of {OBSERVATION_KINDS}, got {self.kind!r}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        if self.kind == "discrete" and (not self.sizes or min(self.sizes) < 1):
            raise ValueError(f"a discrete ObservationPart needs positive sizes, got {self.sizes}")
        if self.kind == "image" and (self.layout not in IMAGE_LAYOUTS or len(self.layout) != len(self.shape)):
            raise ValueError(
                f"image layout must be one of {IMAGE_LAYOUTS} matching shape {self.shape}, got {self.layout!r}"
            )

    @property
    def size(self) -> int:
        """Columns of the part in the flat observation."""
        if self.kind == "discrete":
            return sum(self.sizes)
        return math.prod(self.shape)

    @property
    def image_hwc(self) -> tuple[int, int, int]:
        """`image` only: `(height, width, channels)`, stacked frames counted as channels."""
        dims = dict(zip(self.layout, self.shape, strict=True))
        return dims["h"], dims["w"], dims.get("c", 1) * dims.get("s", 1)


@dataclass(frozen=True)
class EnvSpec:
    """Observation size (and structure) and action space of a (flattened) environment.

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
        observation: the parts of the flat observation (`ObservationPart`), in column order; empty
            for one plain feature vector (the built-in tasks, and specs saved before the field existed).
    """

    observation_size: int
    num_actions: int | None = None
    action_kind: str = "discrete"
    action_sizes: tuple[int, ...] = ()
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    observation: tuple[ObservationPart, ...] = ()

    def __post_init__(self) -> None:
        parts = tuple(p if isinstance(p, ObservationPart) else ObservationPart(**p) for p in self.observation)
        object.__setattr__(self, "observation", parts)  # parts given as dicts: a spec read back from a config
        if self.observation and sum(p.size for p in self.observation) != self.observation_size:
            raise ValueError(
                f"the observation parts cover {sum(p.size for p in self.observation)} columns, "
                f"observation_size is {self.observation_size}"
            )
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
    def parts(self) -> tuple[ObservationPart, ...]:
        """The observation parts; one `vector` part for a spec without structure (or pickled before it)."""
        return self.observation or (ObservationPart("", "vector", (self.observation_size,)),)

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
torch.serialization.add_safe_globals([EnvSpec, ObservationPart])
