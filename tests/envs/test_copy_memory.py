"""copy_memory: observation encoding, partial credit, bad arguments."""

import pytest
import torch

from lightning_memrl.envs import CopyMemory, make_task
from lightning_memrl.errors import ConfigError


def test_episode_shows_tokens_then_blank_delay_then_read_flags():
    env = CopyMemory(num_envs=3, horizon=7, vocab_size=4, seq_len=2, seed=0)
    obs, _ = env.reset()
    shown = []
    for t in range(7):
        tokens, write, read = obs[:, :4], obs[:, 4], obs[:, 5]
        if t < 2:
            assert torch.equal(tokens.sum(1), torch.ones(3)) and write.all() and not read.any()
            shown.append(tokens.argmax(1))
        elif t < 5:
            assert not tokens.any() and not write.any() and not read.any()  # delay of 7 - 2 * 2 = 3 steps
        else:
            assert not tokens.any() and read.all()
            assert torch.equal(env.oracle_action(), shown[t - 5])  # read step i asks for token i
        obs, _, term, _, _ = env.step(env.oracle_action())
        assert bool(term.all()) == (t == 6)


def test_partial_credit_is_the_fraction_of_tokens_right():
    env = CopyMemory(num_envs=4, horizon=6, vocab_size=5, seq_len=3, seed=1)
    env.reset()
    total = torch.zeros(4)
    for t in range(6):
        right = env.oracle_action()
        action = right if t != 4 else (right + 1) % 5  # one of three answers wrong
        _, reward, term, _, info = env.step(action)
        total += reward
    assert term.all() and not info["success"].any()
    assert torch.allclose(total, torch.full((4,), 2 / 3))


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="horizon >= 2 \\* seq_len"):
        make_task("copy_memory", 2, horizon=10, seq_len=6)
    with pytest.raises(ConfigError, match="vocab_size"):
        make_task("copy_memory", 2, vocab_size=1)
