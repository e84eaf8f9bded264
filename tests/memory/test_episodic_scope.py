"""EpisodicMemory scope "episode": a read sees only its own env row's current episode; replay equals acting."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.episodic import EpisodicMemory
from lightning_memrl.specs import EnvSpec


def _scoped(**kwargs) -> EpisodicMemory:
    return EpisodicMemory(16, 8, **{"k": 4, "backend": "exact", "capacity": 2000, "scope": "episode", **kwargs})


def _act(memory, queries, resets, state=None):
    """Acting: `forward_step` per step under no_grad (writes); returns reads, the start state and the end state."""
    state = memory.initial_state(queries.shape[0]) if state is None else state
    start = {k: v.clone() for k, v in state.items()}
    reads = []
    with torch.no_grad():
        for t in range(queries.shape[1]):
            read, state = memory.forward_step(queries[:, t], state, resets[:, t])
            reads.append(read)
    return torch.stack(reads, 1), start, state


def _record_searches(memory, monkeypatch):
    """Every `store.search` answer, as `(slots [Q, k], env [Q], since [Q], before [Q])`."""
    calls, search = [], memory.store.search

    def recording(query, k, before_tick=None, *, env=None, since_tick=None):
        sims, slots = search(query, k, before_tick, env=env, since_tick=since_tick)
        calls.append((slots.clone(), env.clone(), since_tick.clone(), before_tick.clone()))
        return sims, slots

    monkeypatch.setattr(memory.store, "search", recording)
    return calls


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 12), reset_p=st.floats(0.0, 0.5))
def test_a_read_sees_exactly_its_own_episode_so_far(seed, steps, reset_p):
    torch.manual_seed(seed)
    memory = _scoped(k=64)  # k above any episode's length: every eligible entry comes back
    _, _, state = _act(memory, torch.randn(3, 5, 16), torch.rand(3, 5) < reset_p)  # a rollout's rows ...
    memory.eval()
    _act(memory, torch.randn(2, 4, 16), torch.zeros(2, 4, dtype=torch.bool))  # ... an evaluation between ...
    memory.train()
    resets = torch.rand(3, steps) < reset_p
    with pytest.MonkeyPatch.context() as patch:  # ... and the rollout goes on, at ticks the evaluation wrote too
        calls = _record_searches(memory, patch)
        _, start, _ = _act(memory, torch.randn(3, steps, 16), resets, state)
    episode_start = start["episode_start"].clone()
    for t, (slots, env, since, before) in enumerate(calls):
        tick = start["tick"] + t
        episode_start = torch.where(resets[:, t], tick, episode_start)
        assert torch.equal(env, start["env"]) and torch.equal(since, episode_start) and torch.equal(before, tick)
        for row in range(3):
            seen = slots[row][slots[row] >= 0]
            assert (memory.store.envs[seen] == env[row]).all()  # never another env's entry
            assert sorted(memory.store.ticks[seen].tolist()) == list(range(int(since[row]), int(tick[row])))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 12), reset_p=st.floats(0.0, 0.5), warm=st.integers(0, 8))
def test_replay_from_stored_state_equals_acting_reads(seed, steps, reset_p, warm):
    torch.manual_seed(seed)
    memory = _scoped()
    state = None
    if warm:  # the rows' episodes may have begun in an earlier rollout
        _, _, state = _act(memory, torch.randn(3, warm, 16), torch.rand(3, warm) < reset_p)
    queries, resets = torch.randn(3, steps, 16), torch.rand(3, steps) < reset_p
    acted, start, end = _act(memory, queries, resets, state)
    size = memory.store.size
    replayed, replay_end = memory.forward_sequence(queries, start, resets)
    torch.testing.assert_close(replayed, acted)
    assert replay_end.keys() == end.keys() and all(torch.equal(replay_end[k], end[k]) for k in end)
    assert memory.store.size == size  # replay never writes


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 12), reset_p=st.floats(0.0, 0.5))
def test_step_equals_sequence_with_random_resets(seed, steps, reset_p):
    """Reading a filled store: `forward_step` T times (writes suspended) == `forward_sequence`."""
    torch.manual_seed(seed)
    memory = _scoped()
    _, _, state = _act(memory, torch.randn(4, 6, 16), torch.rand(4, 6) < 0.2)
    queries, resets = torch.randn(4, steps, 16), torch.rand(4, steps) < reset_p
    read_seq, state_seq = memory.forward_sequence(queries, state, resets)
    with memory.read_only():
        read_step, _, state_step = _act(memory, queries, resets, state)
    torch.testing.assert_close(read_seq, read_step)
    assert all(torch.equal(state_seq[k], state_step[k]) for k in state_step)


def test_a_reset_row_forgets_its_episode_and_other_rows_keep_theirs():
    torch.manual_seed(0)
    memory = _scoped()
    _, _, state = _act(memory, torch.randn(2, 5, 16), torch.zeros(2, 5, dtype=torch.bool))
    query = torch.randn(2, 16)
    with memory.read_only():
        read, _ = memory.forward_step(query, state, torch.tensor([True, False]))
    assert torch.equal(read[0], memory.out.bias)  # a new episode: nothing to read, zero read -> bias only
    assert not torch.allclose(read[1], memory.out.bias)
    assert memory.diagnostics()["hit_rate"] == 0.5


def test_every_initial_state_hands_out_new_env_ids():
    memory = _scoped()
    first, second = memory.initial_state(3), memory.initial_state(2)
    assert first["env"].tolist() == [0, 1, 2] and second["env"].tolist() == [3, 4]
    assert torch.equal(first["episode_start"], first["tick"])


def test_evaluation_writes_and_read_only_does_not():
    memory = _scoped()
    memory.eval()
    _act(memory, torch.randn(2, 3, 16), torch.zeros(2, 3, dtype=torch.bool))
    assert memory.store.size == 6  # an evaluation episode reads what it wrote itself
    with memory.read_only():
        _act(memory, torch.randn(2, 3, 16), torch.zeros(2, 3, dtype=torch.bool))
    memory.train()
    memory.forward_step(torch.randn(2, 16), memory.initial_state(2), torch.zeros(2, dtype=torch.bool))  # grad on
    assert memory.store.size == 6


def test_checkpoint_keeps_the_writing_envs_and_the_next_env_id():
    torch.manual_seed(0)
    memory = _scoped()
    _, _, state = _act(memory, torch.randn(3, 6, 16), torch.rand(3, 6) < 0.3)
    restored = _scoped()
    restored.load_state_dict(memory.state_dict())
    assert torch.equal(restored.store.envs[: memory.store.size], memory.store.envs[: memory.store.size])
    queries, resets = torch.randn(3, 4, 16), torch.rand(3, 4) < 0.3
    torch.testing.assert_close(
        restored.forward_sequence(queries, state, resets)[0], memory.forward_sequence(queries, state, resets)[0]
    )
    assert restored.initial_state(1)["env"].item() == 3  # ids 0-2 are taken by the checkpointed rows


def test_bad_scope_and_approximate_backend_are_named():
    with pytest.raises(ConfigError, match="'global', 'episode'"):
        EpisodicMemory(16, 8, scope="run")
    with pytest.raises(ConfigError, match="backend 'exact'"):
        EpisodicMemory(16, 8, scope="episode", backend="auto")


def test_agent_replay_matches_acting_log_probs():
    torch.manual_seed(0)
    agent = RecurrentPPO(GRU(16), env_spec=EnvSpec(observation_size=5, num_actions=3), memory=_scoped())
    with torch.no_grad():
        agent.actor.weight.mul_(30.0)  # actions that depend on the read
    agent.train()
    state = start = agent.initial_state(4)
    obs, resets = torch.randn(4, 8, 5), torch.rand(4, 8) < 0.25
    actions, log_probs = [], []
    for t in range(8):
        step = agent.act(obs[:, t], state, resets[:, t])
        actions.append(step.action)
        log_probs.append(step.log_prob)
        state = step.state
    features, _ = agent._features_sequence(obs, start, resets)
    replay = agent.actor(features).log_softmax(-1).gather(-1, torch.stack(actions, 1).unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(replay, torch.stack(log_probs, 1))
