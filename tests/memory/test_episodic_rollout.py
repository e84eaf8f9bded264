"""EpisodicMemory after a rollout: advantage-gated writes, episode returns, successor links, env scope,
the key encoder and its consolidation (checked by hand on small rollouts)."""

import pytest
import torch

from lightning_memrl.hippocampal import Consolidator
from lightning_memrl.memory.episodic import EpisodicMemory
from lightning_memrl.memory.episodic_sleep import consolidation_pairs, consolidation_stats, store_retrieval_quality
from lightning_memrl.memory.rollout_ledger import finished_returns, gate_mask, next_written


def _act(memory, queries, resets, state=None):
    """Acting (train mode, no grad) over `queries [N, T, H]`; returns the state after the last step."""
    memory.train()
    state = memory.initial_state(queries.shape[0]) if state is None else state
    with torch.no_grad():
        for t in range(queries.shape[1]):
            _, state = memory.forward_step(queries[:, t], state, resets[:, t])
    return state


def _stored(memory):
    """Stored entries oldest first: `{values, ticks, episodes, returns, successors}` and their uids."""
    store = memory.store
    order = store.ordered_slots()
    fields = {name: getattr(store, name)[order] for name in ("values", "ticks", "episodes", "returns", "successors")}
    return fields, torch.arange(store.first_uid, store.next_uid)


def test_gate_mask_by_hand():
    adv = torch.tensor([[0.5, -2.0], [-0.1, 1.0], [3.0, 0.0]])
    assert gate_mask(adv, "abs_adv", 0.4, None).tolist() == [[True, True], [False, True], [True, False]]
    assert gate_mask(adv, "pos_adv", 0.4, None).tolist() == [[True, False], [False, True], [True, False]]
    # quantile 0.5 of |A| = {0.5, 2, 0.1, 1, 3, 0} is 0.75: the three largest pass
    assert gate_mask(adv, "abs_adv", 0.0, 0.5).tolist() == [[False, True], [False, True], [True, False]]
    # quantile 0.5 of A = {-2, -0.1, 0, 0.5, 1, 3} is 0.25
    assert gate_mask(adv, "pos_adv", 0.0, 0.5).tolist() == [[True, False], [False, True], [True, False]]
    assert gate_mask(-adv.abs(), "pos_adv", -9.0, 0.5).sum() == 0  # never a non-positive advantage


def test_returns_and_successors_by_hand():
    rewards = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 5.0]])
    dones = torch.tensor([[0, 0], [1, 0], [0, 1], [0, 0]], dtype=torch.bool)
    episodes = torch.tensor([[0, 1], [0, 1], [2, 1], [2, 3]])
    ids, returns, still_open = finished_returns(episodes, rewards, dones, torch.tensor([10.0, 0.0]))
    assert ids.tolist() == [0, 1] and returns.tolist() == [13.0, 1.0] and still_open.tolist() == [7.0, 5.0]
    uids = torch.tensor([[5, -1], [6, 7], [-1, 8], [9, -1]])
    following = next_written(uids, episodes)
    # row-major: 5->6, 6 (its episode ends), 7->8, 8 (nothing after), 9 (nothing after)
    assert following[uids >= 0].tolist() == [6, -1, 8, -1, -1]


def test_gated_writes_store_exactly_the_steps_that_pass_once_per_rollout():
    torch.manual_seed(0)
    memory = EpisodicMemory(4, 2, k=2, backend="exact", capacity=64, write_gate="abs_adv", write_threshold=0.5)
    queries = torch.randn(2, 3, 4)  # rows x steps
    resets = torch.tensor([[True, False, False], [True, False, True]])
    state = _act(memory, queries, resets)
    assert memory.store.size == 0  # acting writes nothing
    adv = torch.tensor([[0.9, 0.1], [-0.2, -0.7], [0.6, 0.3]])  # [T, N]: (0,0) (1,1) (2,0) pass
    rewards = torch.tensor([[0.0, 1.0], [0.0, 2.0], [1.0, 4.0]])
    terminated = torch.tensor([[False, False], [False, True], [True, False]])
    memory.end_rollout(adv, rewards, terminated, torch.zeros_like(terminated))
    got, uids = _stored(memory)
    torch.testing.assert_close(got["values"], torch.stack([queries[0, 0], queries[1, 1], queries[0, 2]]))
    assert got["ticks"].tolist() == [2, 2, 2]  # the rollout's last acting tick: invisible to its own reads
    assert state["tick"].tolist() == [3, 3]
    # row 0: one episode 0..2, ended at step 2 with return 1; row 1: steps 0-1 ended (return 3), step 2 runs on
    assert got["returns"][[0, 2]].tolist() == [1.0, 1.0] and got["returns"][1].item() == 3.0
    assert got["episodes"][0] == got["episodes"][2] != got["episodes"][1]
    assert got["successors"].tolist() == [uids[2].item(), -1, -1]  # row 0's two entries, in step order
    # a read at the next rollout's first tick sees them; at the last acting tick, not
    _, slots = memory.store.search(queries[0, 0][None], 3, before_tick=torch.tensor([2]))
    assert (slots < 0).all()
    _, slots = memory.store.search(queries[0, 0][None], 3, before_tick=torch.tensor([3]))
    assert (slots >= 0).all()


def test_pos_adv_quantile_and_a_second_rollout_links_across_the_boundary():
    memory = EpisodicMemory(4, 2, backend="exact", capacity=64, write_gate="pos_adv", write_quantile=0.5)
    q1, q2 = torch.randn(1, 2, 4), torch.randn(1, 2, 4)
    no_end = torch.zeros(2, 1, dtype=torch.bool)
    state = _act(memory, q1, torch.tensor([[True, False]]))
    memory.end_rollout(torch.tensor([[-1.0], [2.0]]), torch.ones(2, 1), no_end, no_end)
    _act(memory, q2, torch.tensor([[False, False]]), state)
    memory.end_rollout(torch.tensor([[3.0], [-4.0]]), torch.ones(2, 1), torch.tensor([[False], [True]]), no_end)
    got, uids = _stored(memory)
    torch.testing.assert_close(got["values"], torch.stack([q1[0, 1], q2[0, 0]]))
    assert got["successors"].tolist() == [uids[1].item(), -1] and got["returns"].tolist() == [4.0, 4.0]


def test_step_writes_get_their_episode_return_when_it_ends_in_a_later_rollout():
    memory = EpisodicMemory(4, 2, backend="exact", capacity=64)
    no_end = torch.zeros(2, 1, dtype=torch.bool)
    state = _act(memory, torch.randn(1, 2, 4), torch.tensor([[True, False]]))
    memory.end_rollout(torch.zeros(2, 1), torch.tensor([[1.0], [2.0]]), no_end, no_end)
    got, uids = _stored(memory)
    assert got["returns"].isnan().all() and got["successors"].tolist() == [uids[1].item(), -1]
    _act(memory, torch.randn(1, 2, 4), torch.tensor([[False, True]]), state)
    memory.end_rollout(torch.zeros(2, 1), torch.tensor([[3.0], [5.0]]), torch.tensor([[True], [False]]), no_end)
    got, uids = _stored(memory)
    assert got["returns"][:3].tolist() == [6.0, 6.0, 6.0] and got["returns"][3].isnan()  # the 4th runs on
    assert got["successors"].tolist() == [uids[1].item(), uids[2].item(), -1, -1]


def test_gated_rollout_longer_than_the_ledger_is_an_error():
    memory = EpisodicMemory(4, 2, backend="exact", capacity=4, write_gate="abs_adv")
    _act(memory, torch.randn(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="capacity >= num_envs"):
        memory.end_rollout(torch.zeros(3, 2), torch.zeros(3, 2), *(torch.zeros(3, 2, dtype=torch.bool),) * 2)


def test_env_scope_reads_the_rows_own_earlier_episodes_only():
    memory = EpisodicMemory(4, 2, k=8, backend="exact", capacity=64, scope="env")
    queries = torch.randn(2, 4, 4)
    resets = torch.tensor([[True, False, True, False], [True, True, True, True]])
    state = _act(memory, queries, resets)
    _, slots = memory.store.search(
        queries[0, 0][None], 8, before_tick=state["tick"][:1], env=state["env"][:1], since_tick=torch.zeros(1)
    )
    found = slots[slots >= 0]
    assert found.numel() == 4 and (memory.store.envs[found] == state["env"][0]).all()  # both of its episodes


def test_key_encoder_makes_keys_reads_use_the_online_encoder_and_ppo_cannot_move_it():
    torch.manual_seed(0)
    memory = EpisodicMemory(8, 4, k=2, backend="exact", capacity=64, key_size=6)
    assert memory.store.key_size == 6 and not any(p.requires_grad for p in memory.key_encoder.parameters())
    queries = torch.randn(3, 2, 8)
    _act(memory, queries, torch.zeros(3, 2, dtype=torch.bool))
    got, _ = _stored(memory)
    keys = memory.store.keys[memory.store.ordered_slots()]
    torch.testing.assert_close(keys, memory.key_encoder.encode_key(got["values"]))
    query = torch.randn(3, 8, requires_grad=True)
    read, _ = memory.forward_step(query, memory.initial_state(3), torch.zeros(3, dtype=torch.bool))
    read.sum().backward()
    assert query.grad.abs().sum() > 0 and all(p.grad is None for p in memory.key_encoder.parameters())


def _clustered_rollout(memory, generator, rows=16, length=8, steps=32, noise=1.0):
    """Acting on queries `[c_R ; e_episode ; noise]`: a return-class part, an episode part and per-step noise.

    Consecutive entries of an episode share `c_R` and `e`; entries of other episodes with the same return share
    only `c_R`. The noise dominates the raw similarity.
    """
    h = memory.query_size
    episodes = steps // length
    outcome = torch.randint(0, 2, (rows, episodes), generator=generator)
    classes = torch.randn(2, 4, generator=generator)
    per_episode = torch.randn(rows, episodes, 4, generator=generator)
    t = torch.arange(steps)
    ep = t // length
    queries = torch.cat(
        [
            classes[outcome[:, ep]],
            per_episode[:, ep],
            noise * torch.randn(rows, steps, h - 8, generator=generator),
        ],
        dim=-1,
    )
    resets = (t % length == 0).expand(rows, steps)
    _act(memory, queries, resets)
    last = (t % length == length - 1).expand(rows, steps).T
    rewards = torch.where(last, outcome[:, ep].T.float(), 0.0)
    memory.end_rollout(torch.zeros(steps, rows), rewards, last, torch.zeros_like(last))


def test_consolidation_raises_retrieval_quality_on_a_store_whose_returns_cluster():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    memory = EpisodicMemory(32, 4, backend="exact", capacity=4096, key_size=16)
    _clustered_rollout(memory, g, noise=3.0)
    before = store_retrieval_quality(memory, k=5, generator=torch.Generator().manual_seed(1))
    consolidator = Consolidator(memory.key_encoder, temperature=0.1, reward_weight=0.5, lr=1e-2)
    losses = [float(consolidator.update(*consolidation_pairs(memory, 64, g))["loss"]) for _ in range(150)]
    memory.reencode_keys()
    after = store_retrieval_quality(memory, k=5, generator=torch.Generator().manual_seed(1))
    assert before["queries"] == after["queries"] == 256
    assert abs(before["same_return"] - before["same_return_chance"]) < 0.1  # noise: neighbours are random
    assert after["same_return"] > before["same_return"] + 0.2, (before, after)  # measured 0.56 -> 0.81
    assert sum(losses[-10:]) < sum(losses[:10])


def test_consolidation_pairs_are_consecutive_entries_of_ended_episodes():
    memory = EpisodicMemory(32, 4, backend="exact", capacity=4096, key_size=16)
    _clustered_rollout(memory, torch.Generator().manual_seed(0), rows=2, length=4, steps=8)
    anchors, positives, returns = consolidation_pairs(memory, 32, torch.Generator().manual_seed(0))
    got, _ = _stored(memory)
    index = {tuple(v.tolist()): i for i, v in enumerate(got["values"])}
    for a, p, r in zip(anchors, positives, returns, strict=True):
        i, j = index[tuple(a.tolist())], index[tuple(p.tolist())]
        assert got["successors"][i] == j and got["episodes"][i] == got["episodes"][j] and got["returns"][i] == r
    assert consolidation_stats(memory)["pairs"] == 2 * 2 * 3  # 2 rows x 2 episodes x 3 links
