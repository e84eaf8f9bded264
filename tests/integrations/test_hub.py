"""Hub export: agent and memory-store round trips through a local directory (no network)."""

import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.hippocampal import Episode, MemoryStore
from lightning_memrl.integrations.hub import load_memory_store, load_pretrained_into, save_pretrained
from lightning_memrl.memory.episodic import EpisodicMemory
from lightning_memrl.specs import EnvSpec


def _agent():
    return RecurrentPPO(GRU(8), env_spec=EnvSpec(3, 2), memory=EpisodicMemory(8, 4, backend="exact"))


def test_agent_round_trip_through_a_local_directory(tmp_path):
    agent = _agent()
    agent.train()
    with torch.no_grad():
        agent.memory.forward_step(torch.randn(5, 8), agent.memory.initial_state(5), torch.zeros(5, dtype=torch.bool))
    save_pretrained(agent, tmp_path / "agent")
    restored = load_pretrained_into(_agent(), tmp_path / "agent")
    for (name, a), b in zip(agent.state_dict().items(), restored.state_dict().values(), strict=True):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name
    assert torch.equal(restored.memory.store.keys, agent.memory.store.keys) and restored.memory.store.size == 5


def test_memory_store_round_trip_and_wrong_kind(tmp_path):
    store = MemoryStore(4, 8)
    store.add(
        Episode(torch.randn(3, 2), torch.zeros(3, 1), torch.ones(3), torch.zeros(3, dtype=torch.bool)), torch.randn(4)
    )
    save_pretrained(store, tmp_path / "store")
    restored = load_memory_store(tmp_path / "store")
    assert torch.equal(restored.keys, store.keys) and torch.equal(restored.episodes[0].states, store.episodes[0].states)
    with pytest.raises(ValueError, match="not a memory store"):
        load_memory_store(save_pretrained(_agent(), tmp_path / "agent"))
    with pytest.raises(ValueError, match="repo_id"):
        save_pretrained(store, tmp_path / "x", push_to_hub=True)
