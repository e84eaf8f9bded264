"""Action distributions agree with torch.distributions, sample reproducibly and at the right rates."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.agents.distributions import (
    ActionHead,
    Bernoulli,
    Categorical,
    DiagGaussian,
    FactoredCategorical,
)
from lightning_memrl.specs import EnvSpec

D = torch.distributions


def _generator(seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 6), batch=st.integers(1, 5))
def test_categorical_matches_torch(seed, k, batch):
    logits = torch.randn(batch, 3, k, generator=_generator(seed)) * 3
    ours, ref = Categorical(logits), D.Categorical(logits=logits)
    action = ours.sample(_generator(seed + 1))
    assert action.shape == (batch, 3) and action.dtype == torch.long
    torch.testing.assert_close(ours.log_prob(action), ref.log_prob(action))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    assert torch.equal(ours.mode(), logits.argmax(-1))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(2, 5), min_size=1, max_size=4))
def test_factored_categorical_is_the_sum_of_independent_categoricals(seed, sizes):
    logits = torch.randn(4, sum(sizes), generator=_generator(seed))
    dist = FactoredCategorical(logits, tuple(sizes))
    action = dist.sample(_generator(seed))
    assert action.shape == (4, len(sizes))
    parts = [D.Categorical(logits=chunk) for chunk in logits.split(sizes, -1)]
    torch.testing.assert_close(dist.log_prob(action), sum(p.log_prob(action[:, i]) for i, p in enumerate(parts)))
    torch.testing.assert_close(dist.entropy(), sum(p.entropy() for p in parts))
    assert torch.equal(dist.mode(), torch.stack([c.argmax(-1) for c in logits.split(sizes, -1)], -1))


def test_bernoulli_matches_torch_and_samples_at_its_rate():
    logits = torch.tensor([[-2.0, 0.0, 1.5]])
    ours, ref = Bernoulli(logits), D.Independent(D.Bernoulli(logits=logits), 1)
    action = torch.tensor([[1.0, 0.0, 1.0]])
    torch.testing.assert_close(ours.log_prob(action), ref.log_prob(action))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    samples = Bernoulli(logits.expand(20_000, 3)).sample(_generator(3))
    torch.testing.assert_close(samples.mean(0), torch.sigmoid(logits[0]), atol=0.015, rtol=0)
    assert ours.mode().tolist() == [[0.0, 0.0, 1.0]]


def test_gaussian_matches_torch_and_samples_its_mean_and_std():
    mean, log_std = torch.tensor([[0.5, -1.0]]), torch.tensor([0.0, -1.0])
    ours = DiagGaussian(mean, log_std)
    ref = D.Independent(D.Normal(mean, log_std.exp()), 1)
    action = torch.tensor([[3.0, -1.2]])
    torch.testing.assert_close(ours.log_prob(action), ref.log_prob(action))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    samples = DiagGaussian(mean.expand(20_000, 2), log_std).sample(_generator(4))
    torch.testing.assert_close(samples.mean(0), mean[0], atol=0.03, rtol=0)
    torch.testing.assert_close(samples.std(0), log_std.exp(), atol=0.03, rtol=0)
    assert torch.equal(ours.mode(), mean)


@pytest.mark.parametrize(
    "spec",
    [
        EnvSpec(5, num_actions=3),
        EnvSpec(5, action_kind="multi_discrete", action_sizes=(3, 2)),
        EnvSpec(5, action_kind="multi_binary", action_sizes=(4,)),
        EnvSpec(5, action_kind="box", action_sizes=(2,), action_low=(-1.0, -1.0), action_high=(1.0, 1.0)),
    ],
    ids=lambda s: s.action_kind,
)
def test_head_samples_reproducibly_with_a_generator_and_gives_the_spec_shape(spec):
    head = ActionHead(8, spec, log_std_init=-0.5)
    dist = head.distribution(torch.randn(6, 7, 8))
    a, b = dist.sample(_generator(1)), dist.sample(_generator(1))
    assert torch.equal(a, b) and not torch.equal(a, dist.sample(_generator(2)))
    assert a.shape == (6, 7, *spec.action_shape) and a.dtype == spec.action_dtype
    assert dist.log_prob(a).shape == dist.entropy().shape == (6, 7)
    state_before = torch.random.get_rng_state()
    dist.sample(_generator(5))
    assert torch.equal(torch.random.get_rng_state(), state_before), "sampling must not touch the global RNG"
    if spec.action_kind == "box":
        torch.testing.assert_close(head.log_std, torch.full((2,), -0.5))


def test_env_spec_describes_discrete_as_before_and_rejects_bad_values():
    spec = EnvSpec(observation_size=5, num_actions=4)
    assert (spec.action_kind, spec.action_sizes, spec.action_shape, spec.head_size) == ("discrete", (4,), (), 4)
    assert EnvSpec(3, action_kind="box", action_sizes=(2,)).action_low == (-float("inf"),) * 2
    with pytest.raises(ValueError, match="action_kind"):
        EnvSpec(3, action_kind="tuple", action_sizes=(2,))
    with pytest.raises(ValueError, match="num_actions"):
        EnvSpec(3, num_actions=2, action_kind="box", action_sizes=(2,))


def test_a_spec_pickled_before_action_kinds_existed_still_builds_a_head():
    old = EnvSpec.__new__(EnvSpec)  # what unpickling a 2-field EnvSpec from an older checkpoint gives
    old.__dict__.update(observation_size=5, num_actions=4)
    assert (old.action_kind, old.sizes, old.head_size, old.action_shape) == ("discrete", (4,), 4, ())
    assert ActionHead(8, old).distribution(torch.zeros(2, 8)).sample().shape == (2,)
