"""ValueNormalizer statistics, and the agent's use of them (return-scale acting, unit-scale targets)."""

import pytest
import torch

from lightning_memrl.agents import RecurrentPPO, ValueNormalizer
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule

from ._batches import sequence_batch


def test_identity_before_the_first_update():
    norm = ValueNormalizer()
    x = torch.tensor([3.0, -1.0])
    assert torch.equal(norm.normalize(x), x)
    assert torch.equal(norm.denormalize(x), x)


def test_one_update_gives_the_batch_moments_thanks_to_debiasing():
    torch.manual_seed(0)
    targets = 50.0 + 10.0 * torch.randn(4096)
    norm = ValueNormalizer(beta=0.999)
    norm.update(targets)
    mean, std = norm.mean_std()
    assert mean.item() == pytest.approx(targets.mean().item(), rel=1e-4)
    assert std.item() == pytest.approx(targets.std(unbiased=False).item(), rel=1e-3)
    z = norm.normalize(targets)
    assert z.mean().abs().item() < 1e-3 and z.std().item() == pytest.approx(1.0, rel=1e-2)
    assert torch.allclose(norm.denormalize(z), targets, atol=1e-3)


def test_the_average_tracks_a_growing_scale_and_survives_a_state_dict():
    norm = ValueNormalizer(beta=0.9)
    for scale in (1.0, 10.0, 100.0):
        for _ in range(100):
            norm.update(torch.full((8,), scale))
    assert norm.mean_std()[0].item() == pytest.approx(100.0, rel=1e-3)
    copy = ValueNormalizer(beta=0.9)
    copy.load_state_dict(norm.state_dict())
    assert torch.equal(copy.mean_std()[0], norm.mean_std()[0])


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="beta"):
        ValueNormalizer(beta=1.0)
    with pytest.raises(ValueError, match="epsilon"):
        ValueNormalizer(epsilon=0.0)


def _agent(**kwargs):
    dm = RolloutDataModule(
        env_kwargs={"horizon": 5}, num_envs=4, rollout_steps=8, seq_len=8, num_minibatches=2, eval_envs=4,
        eval_episodes=4,
    )  # fmt: skip
    torch.manual_seed(0)
    return dm, RecurrentPPO(GRU(16), env_spec=dm.env_spec, **kwargs)


def test_acting_values_are_denormalised_critic_outputs():
    dm, agent = _agent(normalize_values=True)
    agent.value_normalizer.update(100.0 + 20.0 * torch.randn(256))
    obs = torch.randn(3, dm.env_spec.observation_size)
    state, reset = agent.initial_state(3), torch.ones(3, dtype=torch.bool)
    features, _ = agent._features_step(obs, state, reset)
    head = agent.critic(features).squeeze(-1)
    mean, std = agent.value_normalizer.mean_std()
    assert torch.allclose(agent.act(obs, state, reset).value, head * std + mean)
    assert torch.allclose(agent.predict_value(obs, state, reset), head * std + mean)


def test_value_loss_is_taken_on_normalised_targets():
    dm, agent = _agent(normalize_values=True, vf_coef=0.5)
    s, length = 2, 8
    batch = sequence_batch(
        agent,
        s,
        length,
        values=torch.full((s, length), 100.0),
        advantages=torch.randn(s, length),
        returns=100.0 + 10.0 * torch.randn(s, length),
    )
    agent.log_dict = lambda *a, **k: None  # no trainer attached
    out = agent.training_step(batch, 1)
    _, _, head = agent.evaluate_sequences(batch)
    target = agent.value_normalizer.normalize(batch.returns)  # stats already include this batch
    assert out["value_loss"].item() == pytest.approx(0.5 * ((head - target) ** 2).mean().item(), rel=1e-5)
    assert out["value_loss"].item() < 10.0  # raw targets of ~100 would give a loss of ~5000


def test_off_by_default_keeps_the_raw_value_head():
    _, agent = _agent()
    assert agent.value_normalizer is None
