"""Curriculum schedules from the registry: every task walks from a short easy start to each preset."""

import math

import pytest

from lightning_memrl.envs import DIFFICULTIES, get_task_spec, make_task, task_names
from lightning_memrl.envs.schedule import held_knobs, spaces_of, start_point, task_schedule, walked_knobs
from lightning_memrl.errors import ConfigError


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("task", task_names())
def test_min_horizon_is_the_shortest_valid_episode(task, difficulty):
    kwargs = get_task_spec(task).kwargs(difficulty)
    shortest = get_task_spec(task).cls.min_horizon(**kwargs)
    make_task(task, 1, **{**kwargs, "horizon": shortest})
    if (
        task == "distractor_navigation"
    ):  # valid shorter, but not always solvable (tests/envs/test_distractor_navigation.py)
        return
    with pytest.raises(ConfigError):
        make_task(task, 1, **{**kwargs, "horizon": shortest - 1})


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("task", task_names())
def test_every_task_walks_from_its_start_to_each_preset(task, difficulty):
    spec = get_task_spec(task)
    target = spec.kwargs(difficulty)
    stages = task_schedule(task, target)
    knobs = walked_knobs(spec)
    assert "horizon" in knobs
    assert stages[0] == start_point(spec, target) and stages[-1] == target
    assert stages[0]["horizon"] == max(10, spec.cls.min_horizon(**stages[0])) or stages[0] == target
    spaces = spaces_of(spec, target)
    for before, after in zip(stages, stages[1:], strict=False):
        assert before != after
        assert spaces_of(spec, after) == spaces  # a valid task the agent's layers still fit
        for knob in knobs:  # every knob only grows, held knobs never move
            assert before[knob] <= after[knob], (knob, before, after)
        for knob in held_knobs(spec, target):
            assert before[knob] == after[knob] == target[knob]
        # the horizon grows by at most the factor, unless the stage's counts need a longer episode
        grown = after["horizon"] <= math.ceil(1.5 * before["horizon"]) + 1
        assert grown or after["horizon"] == spec.cls.min_horizon(**after), (before, after)
    easier = [d for d in DIFFICULTIES[: DIFFICULTIES.index(difficulty)] if d != DIFFICULTIES[0]]
    for preset in easier:  # the presets on the way are stages (held knobs at the target's value)
        point = {**target, **{k: spec.kwargs(preset)[k] for k in knobs if k not in held_knobs(spec, target)}}
        assert point in stages, preset


def test_the_walk_of_delayed_cue_medium_is_the_shipped_curriculum():
    target = get_task_spec("delayed_cue").kwargs("medium")
    horizons = [s["horizon"] for s in task_schedule("delayed_cue", target)]
    assert horizons == [10, 15, 22, 33, 50, 71, 100, 141, 200]  # from 10, x1.5 or less, through easy's 50
    assert {s["num_cues"] for s in task_schedule("delayed_cue", target)} == {8}  # the spaces stay put


def test_item_counts_walk_with_the_horizon_and_start_at_the_task_minimum():
    stages = task_schedule("copy_memory", get_task_spec("copy_memory").kwargs("medium"))
    assert [(s["horizon"], s["seq_len"]) for s in stages] == [
        (20, 10), (27, 10), (37, 10), (50, 10), (71, 12), (100, 15), (141, 18), (200, 20)
    ]  # fmt: skip
    recall = task_schedule(
        "associative_recall", get_task_spec("associative_recall").kwargs("medium"), start={"num_pairs": 8}
    )
    assert recall[0] == {"horizon": 17, "vocab_size": 16, "num_pairs": 8}  # 8 pairs and the query, no delay


def test_a_rule_knob_is_held_at_the_target_unless_start_sets_it():
    spec = get_task_spec("n_back")
    for difficulty in ("medium", "hard"):
        target = spec.kwargs(difficulty)
        assert held_knobs(spec, target) == ["n"]
        assert {s["n"] for s in task_schedule("n_back", target)} == {target["n"]}  # never 2, then 3
    walked = task_schedule("n_back", spec.kwargs("medium"), start={"n": 2})
    assert walked[0]["n"] == 2 and walked[-1]["n"] == 3
    assert [s["n"] for s in walked] == sorted(s["n"] for s in walked)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"factor": 1.0}, "factor"),
        ({"start": {"num_cues": 4}}, "observation or action size"),
        ({"start": {"vocab_size": 4}}, "presets do not change"),
        ({"start": {"horizon": 500}}, "above the target"),
        ({"start": {"horizon": 1}}, "shorter than the task allows"),
    ],
)
def test_bad_schedules_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        task_schedule("delayed_cue", get_task_spec("delayed_cue").kwargs("medium"), **kwargs)
