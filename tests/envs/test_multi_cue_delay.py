"""multi_cue_delay: cues at distinct steps of the window, recalled in order; bad arguments."""

import pytest
import torch

from lightning_memrl.envs import MultiCueDelay, make_task
from lightning_memrl.errors import ConfigError


def test_cues_appear_in_the_window_and_are_asked_in_order():
    env = MultiCueDelay(num_envs=64, horizon=12, vocab_size=5, num_cues=3, presentation_len=6, seed=0)
    obs, _ = env.reset()
    seen = [[] for _ in range(64)]
    for t in range(12):
        tokens, query = obs[:, :5], obs[:, 5]
        if t < 6:
            for row in tokens.sum(1).nonzero().squeeze(1).tolist():
                seen[row].append(int(tokens[row].argmax()))
            assert not query.any()
        elif t < 9:
            assert not obs.any()  # delay: 12 - 6 - 3 = 3 blank steps
        else:
            assert query.all() and not tokens.any()
            expected = torch.tensor([cues[t - 9] for cues in seen])
            assert torch.equal(env.oracle_action(), expected)
        obs, _, term, _, _ = env.step(env.oracle_action())
        assert bool(term.all()) == (t == 11)
    assert all(len(cues) == 3 for cues in seen)  # three cues, at distinct steps


def test_cue_steps_are_spread_over_the_window():
    env = MultiCueDelay(num_envs=2000, horizon=10, vocab_size=4, num_cues=1, presentation_len=5, seed=1)
    env.reset()
    steps = (env.window[:, :5] >= 0).float().argmax(1)
    counts = torch.bincount(steps, minlength=5).float() / 2000
    assert torch.allclose(counts, torch.full((5,), 0.2), atol=0.05)


def test_more_cues_than_window_steps_is_a_config_error():
    with pytest.raises(ConfigError, match="presentation_len"):
        make_task("multi_cue_delay", 2, num_cues=11, presentation_len=10, horizon=40)
    with pytest.raises(ConfigError, match="horizon"):
        make_task("multi_cue_delay", 2, num_cues=3, presentation_len=10, horizon=12)
