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

from lightning_memrl.envs.associative_recall import AssociativeRecall
from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.copy_memory import CopyMemory
from lightning_memrl.envs.cross_episode_recall import CrossEpisodeRecall
from lightning_memrl.envs.delayed_cue import DelayedCue
from lightning_memrl.envs.distractor_navigation import DistractorNavigation
from lightning_memrl.envs.gym_adapter import make_gym_task
from lightning_memrl.envs.multi_cue_delay import MultiCueDelay
from lightning_memrl.envs.n_back import NBack
from lightning_memrl.envs.pattern_binding import PatternBinding
from lightning_memrl.envs.permuted_copy import PermutedCopy
from lightning_memrl.envs.t_maze import TMaze
from lightning_memrl.envs.wrappers import WrapperConfig
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
        rule_knobs: preset knobs that change what the task asks, not how much of it (n_back's `n`: reading
            3 back is another read than 2 back, not a longer one); a curriculum holds them at the target's
            value instead of walking them.
    """

    name: str
    cls: type[VectorTask]
    defaults: dict[str, Any]
    difficulties: dict[str, dict[str, Any]]
    target_success: dict[str, float] = field(default_factory=dict)
    rule_knobs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        knobs = set(self.defaults).union(*self.difficulties.values())
        unknown = sorted(set(self.rule_knobs) - knobs)
        if unknown:
            raise ConfigError(
                f"task {self.name!r}: rule_knobs {unknown} are not knobs of the task; "
                f"its knobs (defaults and presets): {sorted(knobs)}"
            )

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
#: other names of registered tasks: what the earlier systems (Pseudo-Mamba v2) called them
TASK_ALIASES = {"assoc_recall": "associative_recall", "distractor_nav": "distractor_navigation"}


def register_task(spec: TaskSpec) -> None:
    """Add a task to the registry (a later registration under the same name replaces it)."""
    _REGISTRY[spec.name] = spec


def task_names() -> list[str]:
    """Names of every registered task (aliases in `TASK_ALIASES` are accepted too, not listed)."""
    return sorted(_REGISTRY)


def get_task_spec(name: str) -> TaskSpec:
    """The spec of a registered task (or of an alias's task); the error lists the known names."""
    name = TASK_ALIASES.get(name, name)
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
    wrappers: list[WrapperConfig] | None = None,
    **kwargs: Any,
) -> VectorTask:
    """Build a registered task, or a `gym:<id>` env, with `num_envs` envs on `device`.

    `vectorization` (`sync` / `async`) and `wrappers` (gymnasium wrappers of each copy, see
    `lightning_memrl.envs.wrappers`) apply to gymnasium envs; built-in tasks are vectorized in tensors.
    """
    if name.startswith(GYM_PREFIX):
        if difficulty is not None:
            raise ConfigError(
                f"data.difficulty ({difficulty!r}) applies to built-in tasks only; "
                f"configure {name!r} through data.env_kwargs"
            )
        return make_gym_task(name[len(GYM_PREFIX) :], num_envs, device, seed, vectorization, wrappers, **kwargs)
    if wrappers:
        raise ConfigError(
            f"data.wrappers are gymnasium wrappers: they apply to gym:<id> envs only, not to built-in task {name!r}"
        )
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

# The defaults are the seed tasks' defaults (what users of Pseudo-Mamba v2 and MMABA know); the
# presets put each difficulty's horizon in its range (easy 50-200, medium 200-1K, hard 1K-5K,
# extreme 5K-20K) and grow the item counts with it.
_SEQUENCE_TARGETS = {"easy": 0.90, "medium": 0.85, "hard": 0.75, "extreme": 0.60}
_DECISION_TARGETS = {"easy": 0.95, "medium": 0.90, "hard": 0.80, "extreme": 0.70}

register_task(
    TaskSpec(
        name="copy_memory",
        cls=CopyMemory,
        defaults={"horizon": 30, "vocab_size": 8, "seq_len": 10},
        difficulties={
            "easy": {"horizon": 50, "seq_len": 10},
            "medium": {"horizon": 200, "seq_len": 20},
            "hard": {"horizon": 1000, "seq_len": 30},
            "extreme": {"horizon": 5000, "seq_len": 50},
        },
        target_success=_SEQUENCE_TARGETS,
    )
)
register_task(
    TaskSpec(
        name="associative_recall",
        cls=AssociativeRecall,
        defaults={"horizon": 19, "vocab_size": 8, "num_pairs": 4},
        difficulties={
            "easy": {"horizon": 50, "vocab_size": 8, "num_pairs": 4},
            "medium": {"horizon": 200, "vocab_size": 16, "num_pairs": 8},
            "hard": {"horizon": 1000, "vocab_size": 16, "num_pairs": 12},
            "extreme": {"horizon": 5000, "vocab_size": 32, "num_pairs": 20},
        },
        target_success=_DECISION_TARGETS,
    )
)
register_task(
    TaskSpec(
        name="n_back",
        cls=NBack,
        defaults={"horizon": 50, "vocab_size": 8, "n": 2},
        difficulties={
            "easy": {"horizon": 100, "n": 2},
            "medium": {"horizon": 300, "n": 3},
            "hard": {"horizon": 1000, "n": 4},
            "extreme": {"horizon": 5000, "n": 5},
        },
        target_success=_SEQUENCE_TARGETS,
        rule_knobs=("n",),  # walked from 2, the recipe learned n = 2 and then stayed near chance at n = 3
    )
)
register_task(
    TaskSpec(
        name="multi_cue_delay",
        cls=MultiCueDelay,
        defaults={"horizon": 23, "vocab_size": 8, "num_cues": 3, "presentation_len": 10},
        difficulties={
            "easy": {"horizon": 100, "num_cues": 2, "presentation_len": 10},
            "medium": {"horizon": 300, "num_cues": 4, "presentation_len": 10},
            "hard": {"horizon": 1000, "num_cues": 6, "presentation_len": 20},
            "extreme": {"horizon": 5000, "num_cues": 10, "presentation_len": 20},
        },
        target_success=_SEQUENCE_TARGETS,
    )
)
register_task(
    TaskSpec(
        name="permuted_copy",
        cls=PermutedCopy,
        defaults={"horizon": 30, "vocab_size": 8, "seq_len": 10},
        difficulties={
            "easy": {"horizon": 50, "seq_len": 8},
            "medium": {"horizon": 200, "seq_len": 15},
            "hard": {"horizon": 1000, "seq_len": 25},
            "extreme": {"horizon": 5000, "seq_len": 40},
        },
        target_success=_SEQUENCE_TARGETS,
    )
)
register_task(
    TaskSpec(
        name="pattern_binding",
        cls=PatternBinding,
        defaults={"horizon": 22, "vocab_size": 8, "pattern_len": 3, "num_patterns": 1},
        difficulties={
            "easy": {"horizon": 100, "num_patterns": 3},
            "medium": {"horizon": 300, "num_patterns": 5},
            "hard": {"horizon": 1000, "num_patterns": 8},
            "extreme": {"horizon": 5000, "num_patterns": 12},
        },
        target_success=_SEQUENCE_TARGETS,
    )
)
register_task(
    TaskSpec(
        name="distractor_navigation",
        cls=DistractorNavigation,
        defaults={"horizon": 20, "track_len": 21, "num_distractors": 2},
        difficulties={
            "easy": {"horizon": 50, "track_len": 21, "num_distractors": 2},
            "medium": {"horizon": 200, "track_len": 41, "num_distractors": 5},
            "hard": {"horizon": 1000, "track_len": 101, "num_distractors": 10},
            "extreme": {"horizon": 5000, "track_len": 201, "num_distractors": 20},
        },
        target_success=_DECISION_TARGETS,
    )
)
register_task(
    TaskSpec(
        name="t_maze",
        cls=TMaze,
        defaults={"horizon": 1002},
        difficulties={
            "easy": {"horizon": 50},
            "medium": {"horizon": 200},
            "hard": {"horizon": 1000},
            "extreme": {"horizon": 5000},
        },
        target_success=_DECISION_TARGETS,
    )
)
# Memory across episodes: the horizon is the presets' range, but the recall spans `lag` whole episodes.
register_task(
    TaskSpec(
        name="cross_episode_recall",
        cls=CrossEpisodeRecall,
        defaults={"horizon": 3, "num_values": 4, "key_size": 8, "lag": 1},
        difficulties={
            "easy": {"horizon": 50, "num_values": 4, "key_size": 8, "lag": 1},
            "medium": {"horizon": 200, "num_values": 8, "key_size": 8, "lag": 2},
            "hard": {"horizon": 1000, "num_values": 8, "key_size": 16, "lag": 4},
            "extreme": {"horizon": 5000, "num_values": 16, "key_size": 16, "lag": 8},
        },
        target_success=_DECISION_TARGETS,
    )
)
