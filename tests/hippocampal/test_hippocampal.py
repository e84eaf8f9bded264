"""Hippocampal stack: episodes/windows, momentum target, store eviction, consolidation, mixture sampling."""

import pytest
import torch

from lightning_memrl.hippocampal import (
    Consolidator,
    DualEncoder,
    Episode,
    HippocampalReplayBuffer,
    MemoryStore,
    reward_aware_infonce,
    windows,
)


def _episode(t: int, reward: float, pattern: int = 0, noise: float = 0.05) -> Episode:
    """A toy episode whose states follow a pattern-specific rotation (temporal structure)."""
    g = torch.Generator().manual_seed(pattern * 1000 + t)
    base = torch.randn(4, generator=g) if pattern else torch.zeros(4)
    states = torch.stack([torch.sin(torch.arange(4.0) * (pattern + 1) + 0.5 * i) for i in range(t)]) + base
    states = states + noise * torch.randn(t, 4, generator=g)
    rewards = torch.zeros(t)
    rewards[-1] = reward
    return Episode(states, torch.zeros(t, dtype=torch.long), rewards, torch.arange(t) == t - 1)


def test_episode_windows_and_shape_checks():
    ep = _episode(6, 1.0)
    assert ep.transitions().shape == (6, 6) and ep.total_reward == 1.0
    w = windows(ep, 2)
    assert w.shape == (5, 2, 6) and torch.equal(w[3], ep.transitions()[3:5])
    assert torch.equal(ep.next_states[:-1], ep.states[1:])
    with pytest.raises(ValueError, match="rewards"):
        Episode(torch.zeros(3, 2), torch.zeros(3), torch.zeros(4), torch.zeros(3, dtype=torch.bool))


def test_momentum_target_follows_the_online_encoder():
    enc = DualEncoder(6, embed_dim=8, hidden_dim=8, momentum=0.9)
    t0 = [p.clone() for p in enc.target.parameters()]
    with torch.no_grad():
        for p in enc.online.parameters():
            p.add_(1.0)
    enc.update_target()
    for before, t, o in zip(t0, enc.target.parameters(), enc.online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * before + 0.1 * o)
    assert not any(p.requires_grad for p in enc.target.parameters())
    emb = DualEncoder(6, embed_dim=8, hidden_dim=8).encode_query(torch.randn(3, 5, 6))
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    assert (emb < 0).any()  # the projector ends linear: embeddings are not forced non-negative


def test_store_retrieves_by_cosine_and_evicts_low_value_episodes():
    store = MemoryStore(embed_dim=3, capacity=3)
    for i, r in enumerate([5.0, 0.0, 3.0]):
        store.add(_episode(4, r), torch.eye(3)[i])
    assert store.retrieve(torch.tensor([0.1, 0.0, 1.0]), k=1).tolist() == [2]
    store.add(_episode(4, 4.0), torch.tensor([1.0, 1.0, 0.0]))  # evicts the zero-return episode
    assert len(store) == 3 and sorted(store.rewards.tolist()) == [3.0, 4.0, 5.0]
    restored = MemoryStore(embed_dim=3, capacity=3)
    restored.load_state_dict(store.state_dict())
    assert torch.equal(restored.keys, store.keys) and torch.equal(restored.episodes[1].states, store.episodes[1].states)


def test_reward_weighting_favours_high_return_pairs():
    """Pairs equal in all but their return: the reward term pulls each anchor in proportion to its return's rank
    (weights 0.1 .. 1.0), so the highest-return pair moves most and the lowest least."""
    anchors = torch.eye(4, 8, requires_grad=True)  # four symmetric pairs: the same loss and pull each
    positives = torch.eye(4, 8)
    returns = torch.tensor([2.0, -1.0, 7.0, 0.5])  # ranks 2, 0, 3, 1
    out = reward_aware_infonce(anchors, positives, returns, temperature=0.5, reward_weight=1.0)
    (pull,) = torch.autograd.grad(out["loss"], anchors)
    pull = pull.norm(dim=-1)
    torch.testing.assert_close(pull / pull.max(), torch.tensor([0.7, 0.1, 1.0, 0.4]))
    assert pull.argmax() == returns.argmax() and pull.argmin() == returns.argmin()
    # a hard pair (its anchor as near the next positive as its own) costs more where its return is high
    losses = {}
    for hard_pair in (1, 2):  # the lowest and the highest return
        hard = torch.eye(4, 8)
        hard[hard_pair] = torch.nn.functional.normalize(hard[hard_pair] + hard[(hard_pair + 1) % 4], dim=0)
        losses[hard_pair] = reward_aware_infonce(hard, positives, returns, temperature=0.5, reward_weight=1.0)
    assert losses[2]["loss_reward"] > losses[1]["loss_reward"]
    torch.testing.assert_close(losses[2]["loss_temporal"], losses[1]["loss_temporal"])  # unweighted: the same
    # rank weights: invariant to the reward scale; reward_weight 0 is the plain temporal InfoNCE
    random_anchors = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    random_positives = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    same_rank = reward_aware_infonce(random_anchors, random_positives, returns, temperature=0.07, reward_weight=0.5)
    scaled = reward_aware_infonce(random_anchors, random_positives, 100 * returns, temperature=0.07, reward_weight=0.5)
    torch.testing.assert_close(same_rank["loss"], scaled["loss"])
    plain = reward_aware_infonce(random_anchors, random_positives, returns, temperature=0.07, reward_weight=0.0)
    torch.testing.assert_close(plain["loss"], plain["loss_temporal"])


def test_consolidation_loss_decreases_on_a_toy_set_with_reward_structure():
    torch.manual_seed(0)
    enc = DualEncoder(6, embed_dim=16, hidden_dim=16, momentum=0.9)
    store = MemoryStore(embed_dim=16, capacity=64)
    buffer = HippocampalReplayBuffer(store, enc, consolidator=Consolidator(enc, lr=3e-3, refresh_every=20))
    for i in range(24):
        buffer.add_episode(_episode(12, reward=float(i % 3), pattern=i % 6))
    gen = torch.Generator().manual_seed(0)
    first = [float(buffer.consolidator.step(store, 32, gen)["loss"]) for _ in range(5)]
    buffer.consolidate(steps=30, batch_size=32)
    last = [float(buffer.consolidator.step(store, 32, gen)["loss"]) for _ in range(5)]
    assert sum(last) / 5 < 0.8 * sum(first) / 5


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5, 1.0])
def test_mixture_sampling_ratio_holds(ratio):
    enc = DualEncoder(6, embed_dim=8, hidden_dim=8)
    buffer = HippocampalReplayBuffer(MemoryStore(8, 32), enc, mixture_ratio=ratio)
    for i in range(10):
        buffer.add_episode(_episode(5 + i, float(i), pattern=i))
    batch = buffer.sample(64, query=buffer.store.episodes[3].transitions()[:2], top_k=2)
    assert batch["states"].shape == (64, 4) and batch["actions"].shape == (64, 1)
    assert int(batch["semantic"].sum()) == round(64 * ratio)
    # semantic samples come only from the two retrieved episodes
    retrieved = [
        buffer.store.episodes[i].states
        for i in buffer.store.retrieve(
            enc.encode_query(buffer.store.episodes[3].transitions()[:2][None])[0], 2
        ).tolist()
    ]
    pool = torch.cat(retrieved)
    for s in batch["states"][batch["semantic"]]:
        assert (pool == s).all(-1).any()


def test_uniform_sampling_covers_transitions_evenly():
    enc = DualEncoder(6, embed_dim=8, hidden_dim=8)
    buffer = HippocampalReplayBuffer(MemoryStore(8, 8), enc)
    buffer.add_episode(_episode(2, 0.0))
    buffer.add_episode(_episode(6, 1.0, pattern=1))
    batch = buffer.sample(4000, generator=torch.Generator().manual_seed(0))
    long_states = buffer.store.episodes[1].states
    from_long = (batch["states"][:, None, :] == long_states[None]).all(-1).any(-1).float().mean()
    assert not batch["semantic"].any() and 0.72 < float(from_long) < 0.78  # 6 of 8 transitions
