"""`feed_memory_back`: the memory read of step t is part of the encoder input at step t + 1."""

import lightning as L
import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import KVMemory


def _data():
    return RolloutDataModule(
        env_kwargs={"horizon": 5, "num_cues": 2}, num_envs=4, rollout_steps=16, seq_len=8, burn_in=2,
        num_minibatches=2, update_epochs=1, eval_envs=4, eval_episodes=4,
    )  # fmt: skip


def _agent(dm, feed_memory_back=True):
    memory = KVMemory(query_size=16, capacity=8, num_heads=2, head_dim=4)
    return RecurrentPPO(GRU(16), env_spec=dm.env_spec, memory=memory, feed_memory_back=feed_memory_back)


@pytest.mark.parametrize("feed_memory_back", [False, True])
def test_the_read_reaches_the_controller_at_the_next_step_of_the_same_episode_only(feed_memory_back):
    torch.manual_seed(0)
    dm = _data()
    agent = _agent(dm, feed_memory_back)
    obs = torch.randn(2, 4, dm.env_spec.observation_size)
    reset = torch.zeros(2, 4, dtype=torch.bool)
    reset[:, 0] = True
    reset[1, 2] = True  # env 1 starts a new episode at step 2
    features, _ = agent._features_sequence(obs, agent.initial_state(2), reset)
    h = features[..., :16]  # the controller output; the read-out follows it
    # The read-out's bias is in every read, also of an empty memory (the read at an episode's first step).
    reaches = torch.zeros(2, 4, dtype=torch.bool)
    for b in range(2):
        for t in range(4):
            grad = torch.autograd.grad(h[b, t].sum(), agent.memory.out.bias, retain_graph=True, allow_unused=True)[0]
            reaches[b, t] = grad is not None and bool(grad.abs().sum() > 0)
    expected = torch.tensor([[False, True, True, True], [False, True, False, True]]) & feed_memory_back
    assert torch.equal(reaches, expected)


def test_sequence_replay_equals_acting_step_by_step():
    torch.manual_seed(1)
    dm = _data()
    agent = _agent(dm)
    obs = torch.randn(3, 7, dm.env_spec.observation_size)
    reset = torch.rand(3, 7) < 0.3
    state = agent.initial_state(3)
    for _ in range(3):  # a carried, non-empty state
        _, state = agent._features_step(torch.randn(3, dm.env_spec.observation_size), state, torch.zeros(3, dtype=bool))
    features, final = agent._features_sequence(obs, state, reset)
    for t in range(7):
        step_features, state = agent._features_step(obs[:, t], state, reset[:, t])
        torch.testing.assert_close(features[:, t], step_features)
    torch.testing.assert_close(final, state)


def test_feed_memory_back_without_a_memory_is_a_config_error():
    dm = _data()
    with pytest.raises(ConfigError, match="feed_memory_back needs a memory"):
        RecurrentPPO(GRU(16), env_spec=dm.env_spec, feed_memory_back=True)


def test_one_ppo_iteration_trains_the_fed_back_input(tmp_path):
    L.seed_everything(0, verbose=False)
    dm = _data()
    agent = _agent(dm)
    first = agent.encoder[0].weight
    before = first[:, dm.env_spec.observation_size :].detach().clone()  # the columns of the fed-back read
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(agent, dm)
    assert torch.isfinite(trainer.callback_metrics["train/policy_loss"])
    assert not torch.equal(before, first[:, dm.env_spec.observation_size :].detach())
