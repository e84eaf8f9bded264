"""permuted_copy: read steps name a permutation of the positions; bad arguments."""

import pytest
import torch

from lightning_memrl.envs import PermutedCopy, make_task
from lightning_memrl.errors import ConfigError


def test_read_steps_request_every_position_once():
    env = PermutedCopy(num_envs=8, horizon=9, vocab_size=5, seq_len=4, seed=0)
    obs, _ = env.reset()
    tokens, requested = [], []
    for t in range(9):
        token, write, read, index = obs[:, :5], obs[:, 5], obs[:, 6], obs[:, 7:]
        if t < 4:
            assert write.all() and torch.equal(token.sum(1), torch.ones(8)) and not index.any()
            tokens.append(token.argmax(1))
        elif t == 4:
            assert not obs.any()  # delay of 9 - 2 * 4 = 1 step
        else:
            assert read.all() and not token.any() and torch.equal(index.sum(1), torch.ones(8))
            position = index.argmax(1)
            requested.append(position)
            expected = torch.stack(tokens, 1).gather(1, position.unsqueeze(1)).squeeze(1)
            assert torch.equal(env.oracle_action(), expected)
        obs, _, term, _, _ = env.step(env.oracle_action())
        assert bool(term.all()) == (t == 8)
    assert torch.equal(torch.stack(requested, 1).sort(1).values, torch.arange(4).expand(8, 4))


def test_orders_are_not_always_the_identity():
    env = PermutedCopy(num_envs=256, horizon=10, vocab_size=4, seq_len=5, seed=1)
    env.reset()
    assert (env.order != torch.arange(5)).any(1).float().mean() > 0.9


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="2 \\* seq_len"):
        make_task("permuted_copy", 2, horizon=5, seq_len=3)
