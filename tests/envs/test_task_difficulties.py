"""Every registered task at every difficulty: the registry entry really sets the episode length and
the item counts, a scripted oracle (reading the true answer) always succeeds with return 1, and a
uniform random policy scores the declared chance level."""

import math

import pytest
import torch

from lightning_memrl.envs import DIFFICULTIES, get_task_spec, make_task, task_names

HORIZON_RANGES = {"easy": (50, 200), "medium": (200, 1000), "hard": (1000, 5000), "extreme": (5000, 20000)}


def _close_to(rate: float, expected: float, n: int) -> bool:
    """Within four standard errors of a binomial mean (plus one count of slack for tiny rates)."""
    return abs(rate - expected) <= 4 * math.sqrt(expected * (1 - expected) / n) + 1.0 / n


def test_registry_presets_cover_every_difficulty_in_its_horizon_range():
    for task in task_names():
        spec = get_task_spec(task)
        assert set(spec.difficulties) == set(DIFFICULTIES), task
        assert set(spec.target_success) == set(DIFFICULTIES), task
        for difficulty, (low, high) in HORIZON_RANGES.items():
            assert low <= spec.difficulties[difficulty]["horizon"] <= high, (task, difficulty)
            assert 0.0 < spec.target_success[difficulty] <= 1.0
            assert spec.chance_level(difficulty=difficulty) < spec.target_success[difficulty]
        make_task(task, 1)  # the defaults build a valid task


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("task", task_names())
def test_difficulty_sets_the_task_oracle_succeeds_random_scores_chance(task, difficulty):
    """One batch: the first envs follow the oracle, the others act uniformly at random."""
    spec = get_task_spec(task)
    expected = spec.kwargs(difficulty)
    long = difficulty in ("hard", "extreme")
    num_oracle, num_random = (4, 60) if long else (16, 240)
    env = make_task(task, num_oracle + num_random, seed=0, difficulty=difficulty)
    for name, value in expected.items():  # horizon and item counts are the registry entry's
        assert getattr(env, name) == value, name
    is_oracle = torch.arange(env.num_envs) < num_oracle
    gen = torch.Generator().manual_seed(0)
    episode_steps = getattr(env, "time_limit", env.horizon)  # the T-maze's random walkers need its limit

    env.reset(seed=1)
    first_end = torch.full((env.num_envs,), -1)
    episode_return = torch.zeros(env.num_envs)
    oracle_returns, random_successes, random_episodes, truncations = [], 0, 0, 0
    for step in range(episode_steps):
        noise = torch.randint(env.num_actions, (env.num_envs,), generator=gen)
        _, reward, term, trunc, info = env.step(torch.where(is_oracle, env.oracle_action(), noise))
        done = term | trunc
        episode_return += reward
        first_end = torch.where(done & (first_end < 0), step + 1, first_end)
        oracle_returns += episode_return[done & is_oracle].tolist()
        assert bool(info["success"][done & is_oracle].all())
        random_successes += int(info["success"][~is_oracle].sum())
        random_episodes += int(done[~is_oracle].sum())
        truncations += int(trunc.sum())
        episode_return[done] = 0.0

    # the oracle ends every episode exactly at the registered horizon, by termination, with return 1
    assert torch.equal(first_end[is_oracle], torch.full((num_oracle,), expected["horizon"]))
    assert len(oracle_returns) >= num_oracle
    assert oracle_returns == pytest.approx([1.0] * len(oracle_returns), abs=1e-4)
    if task != "t_maze":
        assert truncations == 0  # fixed-length tasks end by termination only
        assert torch.equal(first_end, torch.full((env.num_envs,), expected["horizon"]))
    # every random walker's episode ended (the T-maze's by its time limit at the latest)
    assert random_episodes >= num_random
    chance = spec.chance_level(difficulty=difficulty)
    assert _close_to(random_successes / random_episodes, chance, random_episodes)
