"""EpisodicMemory: the Memory contract (step == sequence replay), writes only while acting, checkpoints."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.memory.episodic import EpisodicMemory
from lightning_memrl.specs import EnvSpec


def _act(memory, queries, resets):
    """Acting: `forward_step` per step under no_grad in train mode (writes); returns reads and start state."""
    memory.train()
    state = memory.initial_state(queries.shape[0])
    start = {k: v.clone() for k, v in state.items()}
    reads = []
    with torch.no_grad():
        for t in range(queries.shape[1]):
            read, state = memory.forward_step(queries[:, t], state, resets[:, t])
            reads.append(read)
    return torch.stack(reads, 1), start, state


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 12), warm=st.integers(0, 40))
def test_replay_from_stored_state_equals_acting_reads(seed, steps, warm):
    torch.manual_seed(seed)
    memory = EpisodicMemory(16, 8, k=4, backend="exact", capacity=500)
    if warm:  # entries from earlier rollouts
        _act(memory, torch.randn(3, warm, 16), torch.zeros(3, warm, dtype=torch.bool))
    queries = torch.randn(3, steps, 16)
    resets = torch.rand(3, steps) < 0.3
    acted, start, end = _act(memory, queries, resets)
    size = memory.store.size
    replayed, replay_end = memory.forward_sequence(queries, start, resets)
    torch.testing.assert_close(replayed, acted)
    assert torch.equal(replay_end["tick"], end["tick"]) and memory.store.size == size  # replay never writes


def test_reads_see_only_earlier_writes():
    memory = EpisodicMemory(8, 4, k=2, backend="exact")
    reads, _, _ = _act(memory, torch.randn(2, 3, 8), torch.zeros(2, 3, dtype=torch.bool))
    assert (reads[:, 0] == memory.out.bias).all()  # nothing written yet: zero read -> bias only
    assert memory.store.size == 6 and memory.diagnostics()["store_size"] == 4  # size seen by the last read


def test_eval_mode_and_grad_mode_do_not_write():
    memory = EpisodicMemory(8, 4, backend="exact")
    state = memory.initial_state(2)
    memory.eval()
    with torch.no_grad():
        memory.forward_step(torch.randn(2, 8), state, torch.zeros(2, dtype=torch.bool))
    memory.train()
    memory.forward_step(torch.randn(2, 8), state, torch.zeros(2, dtype=torch.bool))
    assert memory.store.size == 0


def test_gradient_reaches_the_query():
    memory = EpisodicMemory(8, 4, k=3, backend="exact")
    _act(memory, torch.randn(4, 5, 8), torch.zeros(4, 5, dtype=torch.bool))
    query = torch.randn(2, 3, 8, requires_grad=True)
    read, _ = memory.forward_sequence(query, memory.initial_state(2), torch.zeros(2, 3, dtype=torch.bool))
    read.sum().backward()
    assert query.grad is not None and query.grad.abs().sum() > 0


def test_store_rides_in_the_module_state_dict():
    pytest.importorskip("faiss")
    kwargs = dict(k=5, backend="ivfpq", nlist=4, m=4, nbits=4, nprobe=2, train_threshold=64)
    memory = EpisodicMemory(16, 4, **kwargs)
    _act(memory, torch.randn(8, 20, 16), torch.zeros(8, 20, dtype=torch.bool))
    assert memory.store.is_trained
    restored = EpisodicMemory(16, 4, **kwargs)
    restored.load_state_dict(memory.state_dict())
    queries, state = torch.randn(4, 6, 16), memory.initial_state(4)
    resets = torch.zeros(4, 6, dtype=torch.bool)
    torch.testing.assert_close(
        restored.forward_sequence(queries, state, resets)[0],
        memory.forward_sequence(queries, state, resets)[0],
        rtol=0,
        atol=0,
    )


def test_agent_replay_matches_acting_log_probs():
    agent = RecurrentPPO(
        GRU(16), env_spec=EnvSpec(observation_size=5, num_actions=3), memory=EpisodicMemory(16, 8, k=4, backend="exact")
    )
    agent.train()
    state = start = agent.initial_state(4)
    obs, resets = torch.randn(4, 6, 5), torch.rand(4, 6) < 0.2
    actions, log_probs = [], []
    for t in range(6):
        step = agent.act(obs[:, t], state, resets[:, t])
        actions.append(step.action)
        log_probs.append(step.log_prob)
        state = step.state
    assert agent.memory.store.size == 24
    features, _ = agent._features_sequence(obs, start, resets)
    replay = agent.actor(features).log_softmax(-1).gather(-1, torch.stack(actions, 1).unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(replay, torch.stack(log_probs, 1))
    replay.sum().backward()
    assert agent.memory.out.weight.grad.abs().sum() > 0


def test_bootstrap_value_reads_but_does_not_write():
    torch.manual_seed(0)
    agent = RecurrentPPO(
        GRU(16), env_spec=EnvSpec(observation_size=5, num_actions=3), memory=EpisodicMemory(16, 8, k=4, backend="exact")
    )
    agent.train()
    state, no_reset = agent.initial_state(4), torch.zeros(4, dtype=torch.bool)
    for _ in range(3):
        state = agent.act(torch.randn(4, 5), state, no_reset).state
    obs = torch.randn(4, 5)
    value = agent.predict_value(obs, state, no_reset)
    assert agent.memory.store.size == 12  # the peek added nothing
    assert agent.memory.diagnostics()["hit_rate"] == 1  # ... but it read the 12 acted entries
    step = agent.act(obs, state, no_reset)  # acting the same step writes, and values it the same way
    torch.testing.assert_close(step.value, value)
    assert agent.memory.store.size == 16
