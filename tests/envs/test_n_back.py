"""n_back: the answer is the token n steps back, credit per answer, bad arguments."""

import pytest
import torch

from lightning_memrl.envs import NBack, make_task
from lightning_memrl.errors import ConfigError


def test_answer_is_the_token_shown_n_steps_earlier():
    env = NBack(num_envs=5, horizon=12, vocab_size=6, n=3, seed=0)
    obs, _ = env.reset()
    history = []
    for t in range(12):
        assert torch.equal(obs.sum(1), torch.ones(5))  # a token one-hot at every step
        history.append(obs.argmax(1))
        if t >= 3:
            assert torch.equal(env.oracle_action(), history[t - 3])
        obs, reward, term, _, _ = env.step(env.oracle_action())
        assert torch.allclose(reward, torch.full((5,), 1 / 9 if t >= 3 else 0.0))
        assert bool(term.all()) == (t == 11)


def test_actions_before_step_n_are_ignored_and_one_miss_fails():
    env = NBack(num_envs=3, horizon=5, vocab_size=4, n=2, seed=1)
    env.reset()
    total = torch.zeros(3)
    for t in range(5):
        right = env.oracle_action()
        action = (right + 1) % 4 if t in (0, 1, 3) else right  # steps 0, 1 carry no answer; step 3 misses
        _, reward, _, _, info = env.step(action)
        total += reward
    assert torch.allclose(total, torch.full((3,), 2 / 3)) and not info["success"].any()


def test_horizon_must_leave_an_answer():
    with pytest.raises(ConfigError, match="horizon > n"):
        make_task("n_back", 2, horizon=2, n=2)
