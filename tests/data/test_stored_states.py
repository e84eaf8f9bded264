"""Honesty: replaying collected sequences from their stored states reproduces acting exactly.

The earlier systems stored the wrong quantity as the recurrent state, re-zeroed memory statistics
and shifted observations by one step; each of those makes the PPO ratio differ from 1 here.
"""

import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU, LSTM
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.data.collector import sequences
from lightning_memrl.memory import DualTierMiras, EpisodicMemory, KVMemory, PseudoModeMemory


def _sensitive_agent(controller, dm, **model_kwargs):
    """An agent whose actions depend strongly on observation and state."""
    agent = RecurrentPPO(controller, env_spec=dm.env_spec, **model_kwargs)
    with torch.no_grad():
        agent.actor.weight.mul_(300.0)
        agent.critic.weight.mul_(10.0)
    return agent


def _datamodule(burn_in, seq_len=8, horizon=5):
    dm = RolloutDataModule(
        env="delayed_cue",
        env_kwargs={"horizon": horizon, "num_cues": 4},
        num_envs=6,
        rollout_steps=24,
        seq_len=seq_len,
        burn_in=burn_in,
        num_minibatches=3,
        update_epochs=1,
        seed=3,
    )
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("burn_in", [0, 3, 7])
@pytest.mark.parametrize("make", [lambda: GRU(16), lambda: LSTM(16)])
def test_replay_from_stored_states_gives_acting_log_probs_and_values(burn_in, make):
    dm = _datamodule(burn_in)
    agent = _sensitive_agent(make(), dm)
    for _iteration in range(3):  # later rollouts take their burn-in prefix from the previous one
        batches = list(dm.iterate(agent))
        assert sum(b.actions.numel() for b in batches) == 6 * 24
        for batch in batches:
            assert batch.starts[:, burn_in:].any(), "episodes should start inside sequences"
            log_prob, _, value = agent.evaluate_sequences(batch)
            ratio = (log_prob - batch.log_probs).exp()
            torch.testing.assert_close(ratio, torch.ones_like(ratio), atol=1e-5, rtol=0)
            torch.testing.assert_close(value, batch.values, atol=1e-5, rtol=1e-5)


def _kv_with_age_logits(query_size: int) -> KVMemory:
    memory = KVMemory(query_size=query_size, capacity=6, num_heads=2, head_dim=4, age_bias=True)
    with torch.no_grad():  # they start at zero, which would hide the age path
        memory.age_bias.normal_(generator=torch.Generator().manual_seed(0))
    return memory


MEMORIES = {
    "kv": lambda: KVMemory(query_size=16, capacity=6, num_heads=2, head_dim=4),
    "kv_lag": lambda: KVMemory(query_size=16, capacity=6, num_heads=2, head_dim=4, key_lag=1),
    # queried with [GRU output ; GRU input] (memory_sees_input): 16 + 16
    "kv_lag_sees_input": lambda: KVMemory(query_size=32, capacity=6, num_heads=2, head_dim=4, key_lag=1),
    "kv_age_sees_input": lambda: _kv_with_age_logits(32),
    "miras": lambda: DualTierMiras(query_size=16, memory_dim=8, deep_hidden=8, chunk_size=4),
    "pseudo_mode": lambda: PseudoModeMemory(query_size=16, num_slots=4, slot_dim=8),
    "episodic_episode": lambda: EpisodicMemory(16, 8, k=4, capacity=1000, backend="exact", scope="episode"),
    # a key encoder (reads through its online half, keys from its target) and advantage-gated writes after GAE
    "episodic_gated": lambda: EpisodicMemory(
        16, 8, k=4, capacity=1000, backend="exact", key_size=8, write_gate="abs_adv", write_quantile=0.5
    ),
    "episodic_env_keyed": lambda: EpisodicMemory(
        16, 8, k=4, capacity=1000, backend="exact", scope="env", key_size=8, key_hidden=16
    ),
}


@pytest.mark.parametrize("feed_memory_back", [False, True])
@pytest.mark.parametrize("memory", sorted(MEMORIES))
@pytest.mark.parametrize("burn_in", [0, 3])
def test_replay_with_a_memory_gives_acting_log_probs_and_values(burn_in, memory, feed_memory_back):
    """The memory state (and, fed back, the last read) is stored and replayed like the controller's."""
    dm = _datamodule(burn_in)
    sees_input = memory.endswith("_sees_input")
    agent = _sensitive_agent(
        GRU(16), dm, memory=MEMORIES[memory](), feed_memory_back=feed_memory_back, memory_sees_input=sees_input
    )
    for _iteration in range(2):
        for batch in dm.iterate(agent):
            assert batch.starts[:, burn_in:].any(), "episodes should start inside sequences"
            log_prob, _, value = agent.evaluate_sequences(batch)
            ratio = (log_prob - batch.log_probs).exp()
            torch.testing.assert_close(ratio, torch.ones_like(ratio), atol=1e-5, rtol=0)
            torch.testing.assert_close(value, batch.values, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("gate", ["abs_adv", "pos_adv"])
def test_replay_is_exact_around_advantage_gated_writes(gate):
    """Gated writes land after GAE, between acting and training: the replay of that rollout must not see them,
    the next rollout's acting and replay must."""
    dm = _datamodule(burn_in=3)
    memory = EpisodicMemory(16, 8, k=4, capacity=1000, backend="exact", key_size=8, write_gate=gate, write_quantile=0.5)
    agent = _sensitive_agent(GRU(16), dm, memory=memory)
    sizes = []
    for _iteration in range(3):
        for batch in dm.iterate(agent):
            log_prob, _, value = agent.evaluate_sequences(batch)
            torch.testing.assert_close((log_prob - batch.log_probs).exp(), torch.ones_like(log_prob), atol=1e-5, rtol=0)
            torch.testing.assert_close(value, batch.values, atol=1e-5, rtol=1e-5)
        sizes.append(memory.store.size)
        assert memory.diagnostics()["hit_rate"] > 0 or _iteration == 0  # later rollouts read earlier commits
    assert 0 < sizes[0] < sizes[1] < sizes[2] <= 0.6 * 3 * 6 * 24  # about half of each rollout's steps (ties)


def _memory_agent_memory(query_size: int) -> KVMemory:
    """The memory of configs/agents/memory_agent.yaml, small: heads keyed by the previous step beside heads
    keyed by their own step, with age logits."""
    memory = KVMemory(query_size=query_size, capacity=6, num_heads=2, head_dim=4, key_lag=[1, 0], age_bias=True)
    with torch.no_grad():  # they start at zero, which would hide the age path
        memory.age_bias.normal_(generator=torch.Generator().manual_seed(0))
    return memory


@pytest.mark.parametrize("feed_memory_back", [False, True])
@pytest.mark.parametrize("burn_in", [0, 3])
def test_replay_of_the_memory_agent_gives_acting_log_probs_and_values(burn_in, feed_memory_back):
    """The recipe's parts together: lagged and unlagged heads, age logits, the input in the query, and the
    episode clock's counts (a state of its own, stored and replayed with the rest)."""
    dm = _datamodule(burn_in)
    agent = _sensitive_agent(
        GRU(16),
        dm,
        memory=_memory_agent_memory(16 + 16 + 8),
        memory_sees_input=True,
        memory_clock=8,
        feed_memory_back=feed_memory_back,
    )
    with torch.no_grad():  # a clock whose code moves the query a lot, so a wrong count shows
        agent.clock.proj.weight.mul_(30.0)
    for _iteration in range(2):
        for batch in dm.iterate(agent):
            assert batch.starts[:, burn_in:].any(), "episodes should start inside sequences"
            assert "clock" in batch.states
            log_prob, _, value = agent.evaluate_sequences(batch)
            ratio = (log_prob - batch.log_probs).exp()
            torch.testing.assert_close(ratio, torch.ones_like(ratio), atol=1e-5, rtol=0)
            torch.testing.assert_close(value, batch.values, atol=1e-5, rtol=1e-5)


def test_a_zeroed_stored_state_would_be_caught():
    """The check above has teeth: replaying from zero states (the 'cached' mode of an earlier
    suite) changes the log-probs of sequences that start mid-episode."""
    dm = _datamodule(burn_in=0, horizon=20)
    agent = _sensitive_agent(GRU(16), dm)
    list(dm.iterate(agent))
    batch = next(iter(dm.iterate(agent)))
    batch.states = agent.initial_state(batch.actions.shape[0])
    log_prob, _, _ = agent.evaluate_sequences(batch)
    assert (log_prob - batch.log_probs).abs().max() > 1e-3


def test_sequences_tile_the_rollout_in_order():
    dm = _datamodule(burn_in=2)
    agent = _sensitive_agent(GRU(8), dm)
    rollout = dm.collector.collect(agent)
    data = sequences(rollout, seq_len=8, burn_in=2)
    K, N = 24 // 8, 6
    for k in range(K):
        for n in range(N):
            s = k * N + n
            torch.testing.assert_close(data["actions"][s], rollout.actions[k * 8 : k * 8 + 8, n])
            # obs of sequence k: the 2 burn-in steps before it, then its 8 steps
            torch.testing.assert_close(data["obs"][s], rollout.obs[k * 8 : k * 8 + 10, n])


def test_burn_in_steps_receive_no_gradient():
    dm = _datamodule(burn_in=4)
    agent = _sensitive_agent(GRU(16), dm)
    batch = next(iter(dm.iterate(agent)))
    batch.obs = batch.obs.clone().requires_grad_(True)
    log_prob, entropy, value = agent.evaluate_sequences(batch)
    (log_prob.sum() + value.sum() + entropy.sum()).backward()
    grad = batch.obs.grad
    assert grad[:, :4].abs().max() == 0.0
    assert grad[:, 4:].abs().max() > 0.0


def test_replay_is_honest_for_a_box_action_gym_env():
    """Gaussian actions (sampled unclipped, clipped by the adapter): ratio 1 at acting-time parameters."""
    import gymnasium as gym
    import numpy as np

    from tests.envs import toy_gym_envs  # noqa: F401  (registers Spaces-v0)

    box = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    dm = RolloutDataModule(
        env="gym:Spaces-v0", env_kwargs={"action_space": box, "episode_length": 5}, num_envs=6,
        rollout_steps=24, seq_len=8, burn_in=3, num_minibatches=3, update_epochs=1, seed=3,
    )  # fmt: skip
    dm.setup("fit")
    agent = _sensitive_agent(GRU(16), dm)
    for _iteration in range(3):
        for batch in dm.iterate(agent):
            assert batch.starts[:, 3:].any(), "episodes should start inside sequences"
            log_prob, _, value = agent.evaluate_sequences(batch)
            ratio = (log_prob - batch.log_probs).exp()
            torch.testing.assert_close(ratio, torch.ones_like(ratio), atol=1e-5, rtol=0)
            torch.testing.assert_close(value, batch.values, atol=1e-5, rtol=1e-5)
    dm.teardown("fit")


def test_collector_skips_truncation_bootstraps_for_tasks_that_cannot_truncate(monkeypatch):
    dm = _datamodule(burn_in=0)
    agent = _sensitive_agent(GRU(8), dm)
    assert dm.collector.env.can_truncate is False
    calls = []
    original = agent.predict_value
    monkeypatch.setattr(agent, "predict_value", lambda *a: calls.append(1) or original(*a))
    dm.collector.collect(agent)
    assert len(calls) == 1  # only the bootstrap at the rollout's end


def test_sync_free_truncation_bootstraps_equal_the_synced_ones(monkeypatch):
    """The accelerator path (a value of every final observation, kept where cut) = the CPU path (only when cut)."""
    from lightning_memrl.data import collector as collector_module

    rollouts = []
    for sync_free in (False, True):
        monkeypatch.setattr(collector_module, "bootstraps_without_sync", lambda device, flag=sync_free: flag)
        torch.manual_seed(0)
        dm = RolloutDataModule(
            env="t_maze", env_kwargs={"horizon": 4, "time_limit": 5}, num_envs=6, rollout_steps=24,
            seq_len=8, burn_in=0, num_minibatches=3, update_epochs=1, seed=3,
        )  # fmt: skip
        dm.setup("fit")
        torch.manual_seed(1)
        agent = _sensitive_agent(GRU(8), dm)
        rollouts.append(dm.collector.collect(agent))
    synced, sync_free = rollouts
    assert synced.truncated.any(), "the test needs truncated episodes"
    torch.testing.assert_close(sync_free.next_values, synced.next_values)
    torch.testing.assert_close(sync_free.advantages, synced.advantages)


def test_burn_in_replay_does_not_write_the_episodic_store():
    """Fed-back reads replay the burn-in step by step under no_grad: still replay, not acting, so no writes."""
    dm = _datamodule(burn_in=3)
    agent = _sensitive_agent(GRU(16), dm, memory=MEMORIES["episodic_episode"](), feed_memory_back=True)
    batch = next(iter(dm.iterate(agent)))
    size = agent.memory.store.size
    agent.evaluate_sequences(batch)
    assert size == 6 * 24 and agent.memory.store.size == size


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graphs", ["off", "on"])
@pytest.mark.parametrize("memory", [None, *sorted(MEMORIES)])
@pytest.mark.parametrize("burn_in", [0, 3])
def test_replay_from_stored_states_on_cuda_with_and_without_graphs(burn_in, memory, cuda_graphs):
    """Collected on CUDA, acting replayed as a CUDA graph or not: training's replay gives acting's log-probs."""
    import warnings

    from lightning_memrl.data import RolloutCollector

    dm = _datamodule(burn_in)
    dm.collector = RolloutCollector(dm.make_env(6, "cuda", 3), 24, 8, burn_in, 0.99, 0.95, 3, cuda_graphs)
    sees_input = memory is not None and memory.endswith("_sees_input")
    agent = RecurrentPPO(
        GRU(16), env_spec=dm.env_spec, memory=MEMORIES[memory]() if memory else None, memory_sees_input=sees_input
    ).cuda()
    for _iteration in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an episodic memory acts eagerly, with a warning
            batches = list(dm.iterate(agent))
        for batch in batches:
            log_prob, _, value = agent.evaluate_sequences(batch)
            torch.testing.assert_close(log_prob, batch.log_probs, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(value, batch.values, atol=1e-4, rtol=1e-4)
    graphed = cuda_graphs == "on" and not (memory or "").startswith("episodic")  # episodic stores act eagerly
    assert (dm.collector.acting == "cuda graph") == graphed, dm.collector.acting
