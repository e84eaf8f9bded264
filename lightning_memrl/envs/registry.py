"""The task registry: name -> class, default kwargs, difficulty presets, chance level.

`make_task("delayed_cue", num_envs=256, difficulty="easy", horizon=80)` builds a task: the defaults,
then the difficulty preset, then explicit keyword arguments, each overriding the one before.
`make_task("gym:CartPole-v1", num_envs=8, vectorization="async")` builds any gymnasium env through
the adapter (`gym:module:EnvName` imports `module` first); its keyword arguments go to `gymnasium.make`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.delayed_cue import DelayedCue
from lightning_memrl.envs.gym_adapter import make_gym_task
from lightning_memrl.errors import ConfigError

DIFFICULTIES = ("easy", "medium", "hard", "extreme")
GYM_PREFIX = "gym:"


@dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    Attributes:
        name: registry name (`data.env` in configs).
        cls: the `VectorTask` subclass.
        defaults: keyword arguments used when nothing else is given.
        difficulties: per difficulty, the keyword arguments that set it (horizon, item counts).
        target_success: per difficulty, the success rate that counts as solved.
    """

    name: str
    cls: type[VectorTask]
    defaults: dict[str, Any]
    difficulties: dict[str, dict[str, Any]]
    target_success: dict[str, float] = field(default_factory=dict)

    def kwargs(self, difficulty: str | None = None, **overrides: Any) -> dict[str, Any]:
        """The resolved keyword arguments for a difficulty and explicit overrides."""
        resolved = dict(self.defaults)
        if difficulty is not None:
            if difficulty not in self.difficulties:
                raise ConfigError(
                    f"unknown difficulty {difficulty!r} for task {self.name!r}; "
                    f"choose one of {sorted(self.difficulties)}"
                )
            resolved.update(self.difficulties[difficulty])
        resolved.update(overrides)
        return resolved

    def chance_level(self, **kwargs: Any) -> float:
        """Success rate of a uniform random policy for these task arguments."""
        return self.cls.chance_level(**self.kwargs(**kwargs))


_REGISTRY: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> None:
    """Add a task to the registry (a later registration under the same name replaces it)."""
    _REGISTRY[spec.name] = spec


def task_names() -> list[str]:
    """Names of every registered task."""
    return sorted(_REGISTRY)


def get_task_spec(name: str) -> TaskSpec:
    """The spec of a registered task; the error lists the known names."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return _REGISTRY[name]


def make_task(
    name: str,
    num_envs: int,
    device: torch.device | str = "cpu",
    seed: int | None = None,
    difficulty: str | None = None,
    vectorization: str = "sync",
    **kwargs: Any,
) -> VectorTask:
    """Build a registered task, or a `gym:<id>` env, with `num_envs` envs on `device`.

    `vectorization` (`sync` / `async`) applies to gymnasium envs; built-in tasks are vectorized in tensors.
    """
    if name.startswith(GYM_PREFIX):
        if difficulty is not None:
            raise ConfigError(
                f"data.difficulty ({difficulty!r}) applies to built-in tasks only; "
                f"configure {name!r} through data.env_kwargs"
            )
        return make_gym_task(name[len(GYM_PREFIX) :], num_envs, device, seed, vectorization, **kwargs)
    if vectorization != "sync":
        raise ConfigError(
            f"data.vectorization {vectorization!r} applies to gym:<id> envs only; built-in task {name!r} "
            "steps all envs in tensors: leave it at 'sync'"
        )
    spec = get_task_spec(name)
    resolved = spec.kwargs(difficulty, **kwargs)
    try:
        return spec.cls(num_envs=num_envs, device=device, seed=seed, **resolved)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bad arguments for task {name!r} ({resolved}): {err}") from err


register_task(
    TaskSpec(
        name="delayed_cue",
        cls=DelayedCue,
        defaults={"horizon": 50, "num_cues": 4},
        difficulties={
            "easy": {"horizon": 50, "num_cues": 4},
            "medium": {"horizon": 200, "num_cues": 8},
            "hard": {"horizon": 1000, "num_cues": 8},
            "extreme": {"horizon": 5000, "num_cues": 16},
        },
        target_success={"easy": 0.95, "medium": 0.90, "hard": 0.80, "extreme": 0.70},
    )
)
