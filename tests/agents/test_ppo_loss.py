"""The clipped PPO objective against a hand computation."""

import math

import torch

from lightning_memrl.agents import ppo_loss


def test_hand_computed_terms_without_normalisation():
    old = torch.log(torch.tensor([0.5, 0.5]))
    new = torch.log(torch.tensor([0.75, 0.25]))  # ratios 1.5 and 0.5
    adv = torch.tensor([1.0, -2.0])
    value, old_value, returns = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([2.0, 1.0])
    entropy = torch.tensor([0.6, 0.4])
    out = ppo_loss(
        new,
        old,
        adv,
        value,
        old_value,
        returns,
        entropy,
        clip_coef=0.2,
        vf_coef=0.5,
        ent_coef=0.01,
        normalize_advantages=False,
    )
    # sample 0: max(-1*1.5, -1*1.2) = -1.2; sample 1: max(2*0.5, 2*0.8) = 1.6
    assert math.isclose(float(out["policy_loss"]), (-1.2 + 1.6) / 2, rel_tol=1e-6)
    assert math.isclose(float(out["value_loss"]), 0.5 * (1.0 + 1.0) / 2, rel_tol=1e-6)
    assert math.isclose(float(out["entropy"]), 0.5, rel_tol=1e-6)
    expected_loss = 0.2 + 0.5 * 0.5 - 0.01 * 0.5
    assert math.isclose(float(out["loss"]), expected_loss, rel_tol=1e-6)
    logratio = new - old
    assert math.isclose(float(out["approx_kl"]), float(((logratio.exp() - 1) - logratio).mean()), rel_tol=1e-6)
    assert float(out["clip_fraction"]) == 1.0


def test_value_clipping_takes_the_pessimistic_error():
    zeros = torch.zeros(1)
    out = ppo_loss(
        zeros,
        zeros,
        torch.ones(1),
        torch.tensor([3.0]),
        torch.tensor([0.0]),
        torch.tensor([3.0]),
        zeros,
        value_clip=0.2,
        normalize_advantages=False,
    )
    # unclipped error 0; clipped value 0.2 -> error (0.2 - 3)^2 = 7.84
    assert math.isclose(float(out["value_loss"]), 0.5 * 7.84, rel_tol=1e-6)


def test_ratio_one_means_zero_kl_and_no_clipping():
    logp = torch.randn(10)
    out = ppo_loss(logp, logp, torch.randn(10), torch.zeros(10), torch.zeros(10), torch.zeros(10), torch.ones(10))
    assert float(out["approx_kl"]) == 0.0
    assert float(out["clip_fraction"]) == 0.0


def test_gradient_only_in_loss():
    new = torch.zeros(4, requires_grad=True)
    out = ppo_loss(new, torch.zeros(4), torch.randn(4), torch.zeros(4), torch.zeros(4), torch.ones(4), torch.ones(4))
    assert out["loss"].requires_grad
    assert not any(v.requires_grad for k, v in out.items() if k != "loss")
