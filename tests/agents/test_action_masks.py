"""Action masks (MaskablePPO convention): masked actions are never sampled, in acting, training and
evaluation, and their log-probs replay exactly from the stored observations."""

import lightning as L
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.agents.distributions import Categorical, FactoredCategorical
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from tests.envs import toy_gym_envs  # noqa: F401  (registers Masked-v0)

INFO_MASK = [{"class_path": "lightning_memrl.envs.wrappers.InfoActionMask"}]


@st.composite
def _logits_and_masks(draw):
    rows, k = draw(st.integers(1, 6)), draw(st.integers(2, 7))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, k, generator=gen) * draw(st.sampled_from([0.1, 3.0, 30.0]))
    mask = torch.rand(rows, k, generator=gen) < draw(st.floats(0.1, 0.9))
    mask[torch.arange(rows), torch.randint(k, (rows,), generator=gen)] = True  # one allowed action per row
    return logits, mask, seed


@settings(max_examples=60, deadline=None)
@given(_logits_and_masks())
def test_a_masked_action_is_never_sampled_nor_chosen_greedily(case):
    logits, mask, seed = case
    dist = Categorical(logits, mask)
    gen = torch.Generator().manual_seed(seed)
    samples = torch.stack([dist.sample(gen) for _ in range(200)])
    assert mask.gather(1, samples.T).all()
    assert mask.gather(1, dist.mode()[:, None]).all()
    assert (dist.log_probs.exp() * ~mask).sum() == 0  # probability exactly 0
    probs = dist.log_probs.exp()
    torch.testing.assert_close(probs.sum(-1), torch.ones(len(logits)))
    assert torch.isfinite(dist.entropy()).all()


@settings(max_examples=30, deadline=None)
@given(_logits_and_masks(), _logits_and_masks())
def test_each_component_of_a_multi_discrete_action_follows_its_mask(a, b):
    (la, ma, seed), (lb, mb, _) = a, b
    rows = min(len(la), len(lb))
    logits = torch.cat([la[:rows], lb[:rows]], -1)
    mask = torch.cat([ma[:rows], mb[:rows]], -1)
    dist = FactoredCategorical(logits, (la.shape[1], lb.shape[1]), mask)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(50):
        action = dist.sample(gen)
        assert ma[:rows].gather(1, action[:, :1]).all() and mb[:rows].gather(1, action[:, 1:]).all()


def test_an_all_false_mask_leaves_the_row_unmasked():
    dist = Categorical(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool))
    torch.testing.assert_close(dist.log_probs.exp(), torch.full((1, 3), 1 / 3))


def _datamodule(wrappers=None, **env_kwargs):
    return RolloutDataModule(
        env="gym:Masked-v0", env_kwargs=env_kwargs, wrappers=wrappers, num_envs=4, rollout_steps=16, seq_len=8,
        burn_in=2, num_minibatches=2, update_epochs=2, eval_envs=4, eval_episodes=8, seed=0,
    )  # fmt: skip


def _check_masked_acting_and_exact_replay(dm):
    assert [p.kind for p in dm.env_spec.parts][0] == "action_mask"
    agent = RecurrentPPO(GRU(16), env_spec=dm.env_spec)
    with torch.no_grad():
        agent.actor.weight.mul_(300.0)  # confident policies: an unmasked head would pick masked actions
    dm.setup("fit")
    for _ in range(3):  # Masked-v0 raises on a masked action: every sampled action was allowed
        for batch in dm.iterate(agent):
            log_prob, entropy, _ = agent.evaluate_sequences(batch)
            torch.testing.assert_close(log_prob, batch.log_probs, atol=1e-5, rtol=0)
            assert torch.isfinite(entropy).all()
    metrics = dm.evaluate(agent)  # greedy evaluation on the masked env
    assert metrics["episodes"] == 8
    dm.teardown("fit")


def test_masks_in_the_observation_hold_in_acting_replay_and_evaluation():
    _check_masked_acting_and_exact_replay(_datamodule())


def test_masks_from_the_info_through_the_wrapper():
    _check_masked_acting_and_exact_replay(_datamodule(INFO_MASK, mask_in_info=True))


def test_fit_and_validation_run_with_masks(tmp_path):
    dm = _datamodule()
    agent = RecurrentPPO(GRU(16), env_spec=dm.env_spec)
    trainer = L.Trainer(
        max_epochs=2, check_val_every_n_epoch=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(agent, dm)  # Masked-v0 raises on any masked action, in training's rollouts and in validation
    assert torch.isfinite(trainer.callback_metrics["train/policy_loss"])
    assert torch.isfinite(trainer.callback_metrics["val/return"])
