"""associative_recall: keys unique within an episode, observation encoding, bad arguments."""

import pytest
import torch

from lightning_memrl.envs import AssociativeRecall, make_task
from lightning_memrl.errors import ConfigError


def test_keys_are_distinct_and_the_query_names_one_of_them():
    env = AssociativeRecall(num_envs=512, horizon=20, vocab_size=8, num_pairs=8, seed=0)
    for _ in range(3):
        env.reset()
        keys, values = env.tape[:, 0:16:2], env.tape[:, 1:16:2]
        # 8 pairs over 8 items: every episode's keys are a permutation, so no query is ambiguous
        assert torch.equal(keys.sort(1).values, torch.arange(8).expand(512, 8))
        query = env.tape[:, -1]
        slot = (keys == query.unsqueeze(1)).float().argmax(1)
        assert torch.equal(env.answer, values.gather(1, slot.unsqueeze(1)).squeeze(1))


def test_episode_shows_pairs_then_delay_then_the_query():
    env = AssociativeRecall(num_envs=2, horizon=8, vocab_size=6, num_pairs=2, seed=3)
    obs, _ = env.reset()
    pairs = {}
    for t in range(8):
        items, key, value, query = obs[:, :6], obs[:, 6], obs[:, 7], obs[:, 8]
        if t < 4:
            assert torch.equal(items.sum(1), torch.ones(2))
            assert bool(key.all()) == (t % 2 == 0) and bool(value.all()) == (t % 2 == 1)
            if t % 2 == 0:
                last_key = items.argmax(1)
            else:
                for row in range(2):
                    pairs[(row, int(last_key[row]))] = int(items[row].argmax())
        elif t < 7:
            assert not obs.any()  # delay: 8 - 2 * 2 - 1 = 3 blank steps
        else:
            assert query.all() and not key.any() and not value.any()
            for row in range(2):
                assert int(env.oracle_action()[row]) == pairs[(row, int(items[row].argmax()))]
        obs, reward, term, _, _ = env.step(env.oracle_action())
        assert bool(term.all()) == (t == 7)
        assert float(reward.sum()) == (2.0 if t == 7 else 0.0)


def test_more_pairs_than_items_is_a_config_error_naming_the_fix():
    with pytest.raises(ConfigError, match="num_pairs <= vocab_size"):
        make_task("associative_recall", 2, num_pairs=9, vocab_size=8, horizon=30)
    with pytest.raises(ConfigError, match="horizon"):
        make_task("associative_recall", 2, num_pairs=4, horizon=8)
