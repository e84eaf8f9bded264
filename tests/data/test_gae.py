"""GAE against hand computations across terminated, truncated and rollout-end boundaries."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.data.gae import compute_gae, explained_variance


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 1)


def test_hand_computed_single_env():
    # step:        0     1      2(trunc)  3     4(term)  5 (rollout end)
    rewards = _tensor([1.0, 0.0, 2.0, 0.0, 1.0, 0.5])
    values = _tensor([0.5, 0.4, 0.3, 0.2, 0.1, 0.6])
    # next_values: V(s_{t+1}); at the truncation V(final obs) = 0.9; at the end the bootstrap 0.7
    next_values = _tensor([0.4, 0.3, 0.9, 0.1, 99.0, 0.7])
    terminated = torch.tensor([[0], [0], [0], [0], [1], [0]], dtype=torch.bool)
    truncated = torch.tensor([[0], [0], [1], [0], [0], [0]], dtype=torch.bool)
    g, lam = 0.9, 0.8

    adv, ret = compute_gae(rewards, values, next_values, terminated, truncated, g, lam)

    d = [
        1.0 + g * 0.4 - 0.5,
        0.0 + g * 0.3 - 0.4,
        2.0 + g * 0.9 - 0.3,  # truncated: bootstraps from the final observation's value
        0.0 + g * 0.1 - 0.2,
        1.0 - 0.1,  # terminated: no bootstrap, the 99 is ignored
        0.5 + g * 0.7 - 0.6,  # rollout end: bootstraps from the next observation
    ]
    a5 = d[5]
    a4 = d[4]  # the episode ended: nothing flows back from step 5
    a3 = d[3] + g * lam * a4
    a2 = d[2]  # truncated: nothing flows back from step 3
    a1 = d[1] + g * lam * a2
    a0 = d[0] + g * lam * a1
    expected = _tensor([a0, a1, a2, a3, a4, a5])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


def _naive_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    T, N = rewards.shape
    adv = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        for t in range(T):  # sum of discounted deltas until the episode's end or the rollout's
            total, factor = 0.0, 1.0
            for k in range(t, T):
                bootstrap = 0.0 if terminated[k, n] else gamma * next_values[k, n]
                total += factor * (rewards[k, n] + bootstrap - values[k, n])
                if terminated[k, n] or truncated[k, n]:
                    break
                factor *= gamma * lam
            adv[t, n] = total
    return adv


@settings(max_examples=30, deadline=None)
@given(
    steps=st.integers(1, 12),
    envs=st.integers(1, 3),
    p_end=st.floats(0, 0.5),
    gamma=st.floats(0.5, 1.0),
    lam=st.floats(0.0, 1.0),
    seed=st.integers(0, 1000),
)
def test_matches_the_definition_as_a_sum_of_deltas(steps, envs, p_end, gamma, lam, seed):
    gen = torch.Generator().manual_seed(seed)
    shape = (steps, envs)
    rewards, values, next_values = (torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(3))
    ends = torch.rand(shape, generator=gen) < p_end
    kind = torch.rand(shape, generator=gen) < 0.5
    terminated, truncated = ends & kind, ends & ~kind
    adv, _ = compute_gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    torch.testing.assert_close(adv, _naive_gae(rewards, values, next_values, terminated, truncated, gamma, lam))


def test_explained_variance():
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert float(explained_variance(target, target)) == 1.0
    assert abs(float(explained_variance(torch.full_like(target, 2.5), target))) < 1e-6
    assert float(explained_variance(target, torch.ones(4))) == 0.0  # constant target: defined as 0
