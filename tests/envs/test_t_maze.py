"""t_maze: a real walk, a decision at the junction, truncation at the time limit."""

import pytest
import torch

from lightning_memrl.envs import TMaze, make_task
from lightning_memrl.errors import ConfigError


def test_cue_at_start_corridor_then_junction_decision():
    env = TMaze(num_envs=2, horizon=4, seed=0)
    obs, _ = env.reset()
    cue = obs[:, :2].argmax(1)
    assert torch.equal(obs[:, :2].sum(1), torch.ones(2)) and obs[:, 2].all() and not obs[:, 3].any()
    for _ in range(3):  # three forward moves reach the junction
        obs, reward, term, trunc, _ = env.step(torch.zeros(2, dtype=torch.long))
        assert not obs[:, :2].any() and not (term | trunc).any()
    assert obs[:, 3].all() and not obs[:, 2].any()
    obs, reward, term, trunc, info = env.step(cue + 1)  # 1 = left, 2 = right
    assert term.all() and not trunc.any() and info["success"].all() and torch.equal(reward, torch.ones(2))


def test_turning_in_the_corridor_bumps_the_wall_and_waiting_costs_nothing_but_time():
    env = TMaze(num_envs=1, horizon=3, time_limit=10, seed=1)
    env.reset()
    for action in (1, 2, 0, 1, 0):  # turns in the corridor are no-ops
        _, _, term, trunc, _ = env.step(torch.tensor([action]))
        assert not (term | trunc).any()
    assert int(env.position[0]) == 2 == env.junction
    _, _, term, _, _ = env.step(torch.tensor([0]))  # forward at the junction: stays
    assert not term.any() and int(env.position[0]) == 2


def test_wrong_turn_terminates_without_success():
    env = TMaze(num_envs=64, horizon=2, seed=2)
    env.reset()
    env.step(torch.zeros(64, dtype=torch.long))
    _, reward, term, trunc, info = env.step(3 - env.oracle_action())
    assert term.all() and not trunc.any() and not info["success"].any() and not reward.any()


def test_no_decision_is_truncated_at_the_time_limit():
    env = TMaze(num_envs=3, horizon=3, time_limit=7, seed=3)
    env.reset()
    for t in range(7):
        _, reward, term, trunc, info = env.step(torch.zeros(3, dtype=torch.long))
        assert not term.any() and not reward.any()
        assert bool(trunc.all()) == (t == 6)
    assert not info["success"].any()
    assert info["final_observation"][:, 3].all()  # it waited at the junction
    assert int(env.t.max()) == 0 and int(env.position.max()) == 0  # and the next episode started


def test_default_time_limit_is_twice_the_horizon_and_must_allow_the_walk():
    assert make_task("t_maze", 1, difficulty="easy").time_limit == 100
    with pytest.raises(ConfigError, match="time_limit"):
        make_task("t_maze", 1, horizon=10, time_limit=9)
    with pytest.raises(ConfigError, match="horizon >= 2"):
        make_task("t_maze", 1, horizon=1)
