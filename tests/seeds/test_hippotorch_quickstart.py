"""hippotorch's README (seed 002), run as written: only `from hippotorch import` becomes our module.

Quickstart, SB3 adapter and "Portable Brains (Hub)" blocks; the Hub is an offline fake in a directory (conftest.py).
"""

from pathlib import Path

import numpy as np
import pytest
import torch


class _Agent:
    """The README's `agent`: anything with an `update(batch)`."""

    def __init__(self):
        self.batches = []

    def update(self, batch):
        self.batches.append(batch)


def test_quickstart_runs_as_written():
    torch.manual_seed(0)
    agent = _Agent()
    # --- the README's lines from here (imports renamed) ---
    import torch as torch_  # noqa: F401  (the README's first line: import torch)

    from lightning_memrl.hippocampal import (
        Consolidator,
        DualEncoder,
        Episode,
        HippocampalReplayBuffer,
        MemoryStore,
    )

    state_dim, action_dim = 4, 1
    input_dim = state_dim + action_dim + 1  # +1 for reward

    # 1) Encoder and memory
    encoder = DualEncoder(input_dim=input_dim, embed_dim=128, momentum=0.995)
    memory = MemoryStore(embed_dim=128, capacity=50_000)

    # 2) Reward-aware consolidator (sleep phase optimizer)
    consolidator = Consolidator(encoder, temperature=0.07, reward_weight=0.5)

    # 3) Hybrid replay buffer (semantic + uniform)
    buffer = HippocampalReplayBuffer(memory=memory, encoder=encoder, mixture_ratio=0.3, consolidator=consolidator)

    # 4) Record an episode (toy tensors)
    T = 32
    states = torch.randn(T, state_dim)
    actions = torch.randn(T, action_dim)
    rewards = torch.randn(T)
    dones = torch.zeros(T, dtype=torch.bool)
    episode = Episode(states=states, actions=actions, rewards=rewards, dones=dones)
    buffer.add_episode(episode)

    # 5) Sample with semantic + uniform mixing
    query_state = torch.cat([states[0], torch.zeros(action_dim), rewards[0].unsqueeze(0)])
    batch = buffer.sample(batch_size=64, query_state=query_state, top_k=5)
    agent.update(batch)

    # 6) Periodic consolidation ("sleep")
    metrics = buffer.consolidate(steps=50, batch_size=64, report_quality=True)
    print(metrics)
    # --- end of the README's lines ---
    assert batch["states"].shape == (64, state_dim) and int(batch["semantic"].sum()) == round(64 * 0.3)
    assert consolidator.steps == 50 and metrics["loss"] > 0
    assert {"quality_before/same_return", "quality_after/same_return", "quality_after/sharpness"} <= set(metrics)
    assert metrics["quality_after/queries"] == 0  # one episode: no other episode to be its neighbour


def test_report_quality_returns_the_figures_of_a_store_with_neighbours():
    from lightning_memrl.hippocampal import Consolidator, DualEncoder, Episode, HippocampalReplayBuffer, MemoryStore

    torch.manual_seed(0)
    encoder = DualEncoder(input_dim=4, embed_dim=16, hidden_dim=16)
    buffer = HippocampalReplayBuffer(memory=MemoryStore(16, 32), encoder=encoder, consolidator=Consolidator(encoder))
    for i in range(8):
        rewards = torch.full((6,), float(i % 2))
        buffer.add_episode(Episode(torch.randn(6, 2), torch.zeros(6, 1), rewards, torch.zeros(6, dtype=torch.bool)))
    metrics = buffer.consolidate(steps=2, batch_size=8, report_quality=True, top_k=3)
    assert metrics["quality_before/queries"] == 8 and metrics["quality_after/queries"] == 8
    assert 0.0 <= metrics["quality_after/same_return"] <= 1.0
    # each episode sees 7 others, 3 of which share its return
    assert metrics["quality_after/same_return_chance"] == pytest.approx(3 / 7)


def test_sb3_adapter_seed_form_runs_as_written():
    pytest.importorskip("stable_baselines3")
    from lightning_memrl.hippocampal import DualEncoder, HippocampalReplayBuffer, MemoryStore

    encoder = DualEncoder(input_dim=4 + 1 + 1, embed_dim=16, hidden_dim=16)
    buffer = HippocampalReplayBuffer(memory=MemoryStore(16, 32), encoder=encoder)
    # --- the README's lines ---
    from lightning_memrl.integrations.sb3 import SB3ReplayBufferWrapper, TerminalSegmenter

    sb3_buffer = SB3ReplayBufferWrapper(buffer, segmenter=TerminalSegmenter())
    # sb3_buffer.add(obs, next_obs, action, reward, done)
    # --- end ---
    for t in range(12):
        obs, next_obs = np.full(4, t, dtype=np.float32), np.full(4, t + 1, dtype=np.float32)
        sb3_buffer.add(obs, next_obs, np.array([t % 2]), 1.0, t % 6 == 5)
    assert sb3_buffer.size == 2 and len(buffer.store.episodes[1]) == 6
    assert torch.equal(buffer.store.episodes[1].states[0], torch.full((4,), 6.0))
    assert bool(buffer.store.episodes[0].dones[-1]) and buffer.store.rewards.tolist() == [6.0, 6.0]
    assert sb3_buffer.sample(8)["states"].shape == (8, 4)


def test_hub_block_runs_as_written(offline_hub, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # repo ids are not local directories here
    # --- the README's lines (imports renamed) ---
    from lightning_memrl.hippocampal import (
        DualEncoder,
        HippocampalReplayBuffer,
        MemoryStore,
        load_memory_from_hub,
        push_memory_to_hub,
    )

    obs_dim = 42
    encoder = DualEncoder(input_dim=obs_dim, embed_dim=128)
    memory = MemoryStore(embed_dim=128, capacity=2048)

    # Push to hub (requires real hub backend, e.g., huggingface_hub)
    push_memory_to_hub(memory, repo_id="user/fetch-reach-expert", private=False)

    # Later, load
    restored = load_memory_from_hub("user/fetch-reach-expert")

    # Or operate via the buffer convenience wrappers
    buffer = HippocampalReplayBuffer(memory=memory, encoder=encoder)
    buffer.save_to_hub("user/fetch-reach-expert")
    restored_memory = buffer.load_memory_from_hub("user/fetch-reach-expert")
    # --- end ---
    assert Path(offline_hub / "user/fetch-reach-expert" / "weights.pt").is_file()
    assert restored.capacity == 2048 and restored.embed_dim == 128
    assert buffer.store is restored_memory and buffer.memory is restored_memory


def test_hub_round_trip_keeps_the_episodes(offline_hub, monkeypatch, tmp_path):
    from lightning_memrl.hippocampal import Episode, MemoryStore, load_memory_from_hub, push_memory_to_hub
    from lightning_memrl.integrations import hub as integrations_hub

    monkeypatch.chdir(tmp_path)
    store = MemoryStore(4, 8)
    store.add(
        Episode(torch.randn(3, 2), torch.zeros(3, 1), torch.ones(3), torch.zeros(3, dtype=torch.bool)), torch.randn(4)
    )
    push_memory_to_hub(store, "me/store")
    restored = load_memory_from_hub("me/store")
    assert torch.equal(restored.keys, store.keys) and torch.equal(restored.episodes[0].states, store.episodes[0].states)
    assert integrations_hub.load_memory_from_hub is load_memory_from_hub  # one code path, two import places
    with pytest.raises(FileNotFoundError):
        load_memory_from_hub("me/missing")
