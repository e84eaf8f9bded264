"""Curriculum schedules from the registry: the stages that lead a task from its easiest setting to a target.

`task_schedule("copy_memory", get_task_spec("copy_memory").kwargs("medium"))` lists task arguments,
stage by stage, from a short easy start to the medium preset. Nothing per task is written by hand:

- The knobs walked are the integer arguments the task's difficulty presets change (the horizon, and
  item counts such as `num_cues`, `num_pairs`, `seq_len`, `n`, `track_len`). A knob whose easiest
  value would change the observation or action size is held at the target's value for the whole
  walk, since the agent's input and output layers cannot follow (`delayed_cue`'s `num_cues`,
  `associative_recall`'s `vocab_size`, `permuted_copy`'s `seq_len`, `distractor_navigation`'s
  `num_distractors`); so is a knob the task registers as a rule knob (`TaskSpec.rule_knobs`: n_back's
  `n`, where another value asks for another read, not a longer one). `start` may still set a rule knob.
- The start takes every other knob from the easiest preset, and the horizon `start_horizon` (10:
  "start short", what the delayed_cue curriculum found), raised to the task's `min_horizon` for
  those counts (associative_recall's pairs and query with no delay, say).
- The path runs through every preset that lies between start and target (all its walked knobs
  between theirs), so the presets are stages. Between two waypoints the horizon grows geometrically
  by at most `factor` per stage, and the counts move with the fraction of the way (in log horizon)
  travelled, rounded; a stage whose counts need a longer episode gets the task's `min_horizon`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lightning_memrl.envs.registry import DIFFICULTIES, TaskSpec, get_task_spec
from lightning_memrl.errors import ConfigError

HORIZON = "horizon"


def walked_knobs(spec: TaskSpec) -> list[str]:
    """Integer arguments that the task's presets change, the horizon first."""
    presets = [spec.kwargs(d) for d in DIFFICULTIES if d in spec.difficulties]
    changed = {
        key
        for key in set().union(*presets)
        if all(isinstance(p.get(key), int) for p in presets) and len({p[key] for p in presets}) > 1
    }
    return sorted(changed, key=lambda key: (key != HORIZON, key))


def spaces_of(spec: TaskSpec, task_kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """`(observation_size, num_actions)` of the task built with these arguments (one env)."""
    task = spec.cls(num_envs=1, **task_kwargs)
    return task.observation_size, task.num_actions


def space_knobs(spec: TaskSpec, target: Mapping[str, Any]) -> list[str]:
    """Walked knobs whose easiest-preset value would change the task's spaces: held at the target's value."""
    easiest = spec.kwargs(DIFFICULTIES[0])
    target_spaces = spaces_of(spec, target)
    held = []
    for key in walked_knobs(spec):
        if key == HORIZON or easiest[key] == target[key]:
            continue
        try:
            same = spaces_of(spec, {**target, key: easiest[key]}) == target_spaces
        except (TypeError, ValueError):  # not even valid at the target's other values: do not walk it
            same = False
        if not same:
            held.append(key)
    return held


def held_knobs(spec: TaskSpec, target: Mapping[str, Any]) -> list[str]:
    """Walked knobs held at the target's value: those that set the spaces and the task's `rule_knobs`."""
    spaces = space_knobs(spec, target)
    return spaces + [key for key in walked_knobs(spec) if key in spec.rule_knobs and key not in spaces]


def _min_horizon(spec: TaskSpec, task_kwargs: Mapping[str, Any]) -> int:
    return int(spec.cls.min_horizon(**{k: v for k, v in task_kwargs.items() if k != HORIZON}))


def start_point(
    spec: TaskSpec, target: Mapping[str, Any], start_horizon: int = 10, start: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The first stage: held knobs at the target, the other counts at the easiest preset (never above
    the target), the horizon `start_horizon` (never below the task's minimum, never above the target's);
    `start` overrides any of these."""
    easiest = spec.kwargs(DIFFICULTIES[0])
    held = held_knobs(spec, target)
    first = dict(target)
    for key in walked_knobs(spec):
        if key != HORIZON and key not in held:
            first[key] = min(easiest[key], target[key])
    first.update(start or {})
    if start is None or HORIZON not in start:
        first[HORIZON] = min(max(start_horizon, _min_horizon(spec, first)), target[HORIZON])
    for key in walked_knobs(spec):
        if first[key] > target[key]:
            raise ConfigError(
                f"curriculum start {key}={first[key]} is above the target's {target[key]} for task {spec.name!r}; "
                "a curriculum only makes the task harder: lower the start or raise the target"
            )
    if first[HORIZON] < _min_horizon(spec, first):
        raise ConfigError(
            f"curriculum start {first} for task {spec.name!r} is shorter than the task allows "
            f"(horizon >= {_min_horizon(spec, first)}): raise start horizon"
        )
    return first


def _waypoints(spec: TaskSpec, first: Mapping[str, Any], target: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The presets strictly between `first` and `target` (held knobs at the target), easiest first."""
    held = set(held_knobs(spec, target))
    knobs = walked_knobs(spec)
    points = []
    for difficulty in DIFFICULTIES:
        if difficulty not in spec.difficulties:
            continue
        preset = spec.kwargs(difficulty)
        point = {**target, **{k: preset[k] for k in knobs if k not in held}}
        between = all(first[k] <= point[k] <= target[k] for k in knobs)
        if between and first[HORIZON] < point[HORIZON] < target[HORIZON]:
            points.append(point)
    return points


def _segment(spec: TaskSpec, a: Mapping[str, Any], b: Mapping[str, Any], factor: float) -> list[dict[str, Any]]:
    """Stages after `a` up to and including `b`: geometric horizons, counts by the log-horizon fraction."""
    knobs = [k for k in walked_knobs(spec) if k != HORIZON]
    ratio = b[HORIZON] / a[HORIZON]
    steps = max(1, math.ceil(math.log(ratio) / math.log(factor) - 1e-9)) if ratio > 1 else 1
    stages = []
    for i in range(1, steps + 1):
        fraction = i / steps
        stage = dict(b)
        for key in knobs:
            stage[key] = int(round(a[key] + fraction * (b[key] - a[key])))
        horizon = int(round(a[HORIZON] * ratio**fraction))
        stage[HORIZON] = min(b[HORIZON], max(horizon, _min_horizon(spec, stage)))
        stages.append(stage)
    return stages


def task_schedule(
    name: str,
    target: Mapping[str, Any],
    *,
    start_horizon: int = 10,
    start: Mapping[str, Any] | None = None,
    factor: float = 1.5,
) -> list[dict[str, Any]]:
    """The stages (full task arguments) from the start to `target`, both included.

    Args:
        name: a registered task.
        target: the resolved task arguments to reach (`get_task_spec(name).kwargs(difficulty, **overrides)`).
        start_horizon: horizon of the first stage (raised to the task's minimum for its counts).
        start: explicit first-stage values of any walked knob (the horizon included).
        factor: largest horizon growth from one stage to the next (> 1).
    """
    if not factor > 1:
        raise ConfigError(f"curriculum factor must be > 1, got {factor}")
    if start_horizon < 1:
        raise ConfigError(f"curriculum start_horizon must be >= 1, got {start_horizon}")
    spec = get_task_spec(name)
    target = dict(target)
    unknown = set(start or {}) - set(walked_knobs(spec))
    if unknown:
        raise ConfigError(
            f"curriculum start names {sorted(unknown)}, which task {name!r}'s presets do not change; "
            f"its curriculum walks {walked_knobs(spec)}"
        )
    fixed = set(start or {}) & set(space_knobs(spec, target))
    if fixed:
        raise ConfigError(
            f"curriculum start sets {sorted(fixed)}, which would change task {name!r}'s observation or action "
            "size; those knobs stay at the target's value for the whole walk: leave them out of start"
        )
    first = start_point(spec, target, start_horizon, start)
    stages = [first]
    for point in [*_waypoints(spec, first, target), target]:
        for stage in _segment(spec, stages[-1], point, factor):
            stage[HORIZON] = max(stage[HORIZON], stages[-1][HORIZON])
            if stage != stages[-1]:
                stages.append(stage)
    return stages
