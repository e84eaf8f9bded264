"""RecurrentPPO with every action kind on gymnasium envs: honest replay, training, checkpoint loading."""

import gymnasium as gym
import lightning as L
import numpy as np
import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from tests.envs import toy_gym_envs  # noqa: F401  (registers Spaces-v0)

S = gym.spaces
ACTION_SPACES = {
    "discrete": S.Discrete(3),
    "multi_discrete": S.MultiDiscrete([3, 2]),
    "multi_binary": S.MultiBinary(3),
    "box": S.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
}


def _setup(kind, seed=0):
    dm = RolloutDataModule(
        env="gym:Spaces-v0", env_kwargs={"action_space": ACTION_SPACES[kind], "episode_length": 5},
        num_envs=4, rollout_steps=16, seq_len=8, burn_in=2, num_minibatches=2, update_epochs=2,
        eval_envs=4, eval_episodes=4, seed=seed,
    )  # fmt: skip
    return dm, RecurrentPPO(GRU(16), env_spec=dm.env_spec, log_std_init=-0.5)


@pytest.mark.parametrize("kind", sorted(ACTION_SPACES))
def test_acting_and_replay_agree_for_every_action_kind(kind):
    dm, agent = _setup(kind)
    dm.setup("fit")
    assert dm.env_spec.action_kind == kind
    for _ in range(2):
        for batch in dm.iterate(agent):
            assert batch.actions.shape == (4, 8, *dm.env_spec.action_shape)
            assert batch.actions.dtype == dm.env_spec.action_dtype
            log_prob, entropy, value = agent.evaluate_sequences(batch)
            torch.testing.assert_close(log_prob, batch.log_probs, atol=1e-5, rtol=0)
            torch.testing.assert_close(value, batch.values, atol=1e-5, rtol=1e-5)
            assert torch.isfinite(entropy).all()
    dm.teardown("fit")


@pytest.mark.parametrize("kind", sorted(ACTION_SPACES))
def test_fit_and_greedy_evaluation_for_every_action_kind(kind, tmp_path):
    dm, agent = _setup(kind)
    trainer = L.Trainer(
        max_epochs=2, check_val_every_n_epoch=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path,
    )  # fmt: skip
    before = [p.detach().clone() for p in agent.actor.parameters()]
    trainer.fit(agent, dm)
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/policy_loss"]) and torch.isfinite(metrics["val/return"])
    assert "val/success_rate" not in metrics  # Spaces-v0 reports no success here
    assert any(not torch.equal(b, p) for b, p in zip(before, agent.actor.parameters(), strict=True))
    # the spec is plain data: the agent's hyperparameters load with weights_only
    torch.save({"hyper_parameters": dict(agent.hparams), "state_dict": agent.state_dict()}, tmp_path / "a.ckpt")
    loaded = torch.load(tmp_path / "a.ckpt", weights_only=True)
    assert loaded["hyper_parameters"]["env_spec"] == dm.env_spec
