"""pattern_binding: pairs of patterns, distinct cue patterns, the queried pair's target; bad arguments."""

import pytest
import torch

from lightning_memrl.envs import PatternBinding, make_task
from lightning_memrl.errors import ConfigError


def test_episode_presents_pairs_then_queries_one_cue_pattern():
    env = PatternBinding(num_envs=4, horizon=20, vocab_size=3, pattern_len=2, num_patterns=3, seed=0)
    obs, _ = env.reset()
    shown = []
    for t in range(20):
        token, cue, target, query, respond = obs[:, :3], obs[:, 3], obs[:, 4], obs[:, 5], obs[:, 6]
        if t < 12:  # A1 B1 A2 B2 A3 B3, two tokens each
            assert torch.equal(token.sum(1), torch.ones(4)) and not query.any() and not respond.any()
            assert bool(cue.all()) == ((t // 2) % 2 == 0) and bool(target.all()) == ((t // 2) % 2 == 1)
            shown.append(token.argmax(1))
        elif t < 16:
            assert not obs.any()  # delay: 20 - 2 * 4 * 2 = 4 steps
        elif t < 18:
            assert query.all() and torch.equal(token.sum(1), torch.ones(4))
            shown.append(token.argmax(1))
        else:
            assert respond.all() and not token.any()
        obs, _, term, _, _ = env.step(env.oracle_action())
        assert bool(term.all()) == (t == 19)
    presented = torch.stack(shown[:12], 1).view(4, 3, 2, 2)  # [env, pair, A/B, token]
    queried = torch.stack(shown[12:], 1)
    match = (presented[:, :, 0] == queried.unsqueeze(1)).all(2)
    assert torch.equal(match.sum(1), torch.ones(4, dtype=torch.long))  # exactly one cue pattern matches


def test_cue_patterns_are_distinct_even_when_the_space_is_full():
    env = PatternBinding(num_envs=256, horizon=40, vocab_size=2, pattern_len=2, num_patterns=4, seed=1)
    env.reset()
    cues = env.tape[:, :16].view(256, 4, 2, 2)[:, :, 0]
    codes = cues[..., 0] + 2 * cues[..., 1]
    assert torch.equal(codes.sort(1).values, torch.arange(4).expand(256, 4))


def test_oracle_answers_the_target_of_the_queried_cue():
    env = PatternBinding(num_envs=64, horizon=30, vocab_size=4, pattern_len=3, num_patterns=4, seed=2)
    env.reset()
    pairs = env.tape[:, :24].view(64, 4, 2, 3)
    queried = env.tape[:, 24:]
    slot = (pairs[:, :, 0] == queried.unsqueeze(1)).all(2).float().argmax(1)
    expected = pairs[torch.arange(64), slot, 1]
    assert torch.equal(env.answer[:, :3], expected)


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="distinct"):
        make_task("pattern_binding", 2, vocab_size=2, pattern_len=2, num_patterns=5, horizon=40)
    with pytest.raises(ConfigError, match="horizon"):
        make_task("pattern_binding", 2, num_patterns=3, horizon=20)
