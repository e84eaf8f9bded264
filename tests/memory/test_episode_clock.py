"""EpisodeClock: per-episode counts as sinusoidal codes; step x T == sequence, resets, addressable by a linear match."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import EpisodeClock


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 4), steps=st.integers(1, 16), reset_p=st.floats(0.0, 0.5), seed=st.integers(0, 2**16))
def test_step_equals_sequence_with_random_resets(batch, steps, reset_p, seed):
    gen = torch.Generator().manual_seed(seed)
    clock = EpisodeClock(3, size=8)
    counts = torch.randint(0, 5, (batch, 5), generator=gen).float()  # a carried-in episode
    obs = torch.randint(0, 2, (batch, steps, 3), generator=gen).float()
    reset = torch.rand(batch, steps, generator=gen) < reset_p
    code_seq, counts_seq = clock.forward_sequence(obs, counts, reset)
    codes, state = [], counts
    for t in range(steps):
        code, state = clock.forward_step(obs[:, t], state, reset[:, t])
        codes.append(code)
    torch.testing.assert_close(code_seq, torch.stack(codes, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(counts_seq, state, atol=0, rtol=0)


def test_counts_are_per_feature_their_sum_and_steps_and_restart_with_the_episode():
    clock = EpisodeClock(2, size=4)
    obs = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    reset = torch.tensor([[False, False, False, True, False]])
    carried = torch.tensor([[2.0, 0.0, 2.0, 5.0]])
    _, counts = clock.forward_sequence(obs, carried, reset)
    assert counts.tolist() == [[1.0, 1.0, 2.0, 2.0]]  # the episode that started at step 3: two steps
    _, counts = clock.forward_sequence(obs[:, :3], carried, reset[:, :3])
    assert counts.tolist() == [[4.0, 1.0, 5.0, 8.0]]  # no reset: continues the carried counts


def test_equal_counts_match_best_and_an_offset_is_a_rotation():
    """What lets a linear query find "the i-th event" or "d events back": the raw sinusoid features."""
    clock = EpisodeClock(1, size=4, num_frequencies=8)
    counts = torch.arange(60.0)

    def features(c):
        angles = c[:, None] * clock.omega
        return torch.cat([angles.cos(), angles.sin()], -1)

    f = features(counts)
    similarity = f @ f.T
    assert torch.equal(similarity.argmax(1), torch.arange(60))  # each count matches itself best
    d = 7
    cos, sin = (d * clock.omega).cos(), (d * clock.omega).sin()
    rotate = torch.zeros(16, 16)  # code(c) -> code(c - d), the same matrix for every c
    n = 8
    rotate[:n, :n], rotate[:n, n:] = torch.diag(cos), torch.diag(sin)  # cos(w(c-d)) = cos wc cos wd + sin wc sin wd
    rotate[n:, :n], rotate[n:, n:] = torch.diag(-sin), torch.diag(cos)  # sin(w(c-d)) = sin wc cos wd - cos wc sin wd
    shifted = f[d:] @ rotate.T
    torch.testing.assert_close(shifted, f[:-d], atol=1e-4, rtol=0)
    assert math.isclose(float(clock.omega[0]), 2 * math.pi / 3.0, rel_tol=1e-5)


@pytest.mark.parametrize(
    "kwargs", [{"observation_size": 0}, {"size": 0}, {"num_frequencies": 0}, {"min_period": 1.0}, {"max_period": 2.0}]
)
def test_bad_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        EpisodeClock(**{"observation_size": 3, **kwargs})
