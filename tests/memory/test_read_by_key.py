"""What is written can be read back by its key (memories with hand-set projections)."""

import pytest
import torch
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import PMM, DualTierMiras, KVMemory, PseudoModeMemory, RingMemory, SlotMemory

SIZE = 8
SHARP = 30.0  # query scale: makes attention pick the matching entry


def _set(layer: nn.Linear, weight: torch.Tensor | float, bias: float = 0.0) -> None:
    with torch.no_grad():
        if isinstance(weight, float):
            layer.weight.fill_(weight)
        else:
            layer.weight.copy_(weight)
        if layer.bias is not None:
            layer.bias.fill_(bias)


def _write_items_then_query(memory, key_index: int, num_items: int = 4) -> torch.Tensor:
    """Steps 0..n-1 present the one-hot items e_0..e_{n-1}; step n queries with e_key. Returns the read."""
    eye = torch.eye(SIZE)
    query = torch.cat([eye[:num_items], eye[key_index : key_index + 1]]).unsqueeze(0)  # [1, n + 1, SIZE]
    with torch.no_grad():
        read, _ = memory.forward_sequence(query, memory.initial_state(1), torch.zeros(1, num_items + 1, dtype=bool))
    return read[0, -1]


def _assert_reads(read: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(read, expected, atol=0.05, rtol=0.0)


def test_kv_memory_reads_the_value_of_the_matching_key():
    memory = KVMemory(SIZE, capacity=8, num_heads=1, head_dim=SIZE)
    _set(memory.to_query, SHARP * torch.eye(SIZE))
    for layer in (memory.to_key, memory.to_value, memory.out):
        _set(layer, torch.eye(SIZE))
    for key in range(4):
        _assert_reads(_write_items_then_query(memory, key), torch.eye(SIZE)[key])


@pytest.mark.parametrize("age", [1, 3, 5])
def test_kv_memory_age_bias_reads_the_step_that_many_back(age):
    """No content match at all (zero query projection): the age logits alone pick the entry."""
    memory = KVMemory(SIZE, capacity=6, num_heads=1, head_dim=SIZE, age_bias=True)
    _set(memory.to_query, 0.0)
    for layer in (memory.to_key, memory.to_value, memory.out):
        _set(layer, torch.eye(SIZE))
    with torch.no_grad():
        memory.age_bias[0, age - 1] = SHARP
    # steps 0..5 write e_0..e_5, step 6 reads: `age` steps back is item 6 - age
    read = _write_items_then_query(memory, 0, num_items=6)
    _assert_reads(read, torch.eye(SIZE)[6 - age])
    assert memory.diagnostics()["age_logit_peak"] == pytest.approx(memory.age_bias_scale * SHARP * (1 - 1 / 6))


def test_ring_memory_reads_the_stored_output_of_the_matching_step():
    memory = RingMemory(SIZE, capacity=8, key_dim=SIZE)
    _set(memory.to_query, SHARP * torch.eye(SIZE))
    _set(memory.to_key, torch.eye(SIZE))
    _assert_reads(_write_items_then_query(memory, 1), torch.eye(SIZE)[1])


def test_ring_memory_mean_read_pools_the_last_capacity_steps():
    memory = RingMemory(SIZE, capacity=3, read="mean")
    # after writing e_0..e_3 the ring holds e_1, e_2, e_3
    _assert_reads(_write_items_then_query(memory, 0), torch.eye(SIZE)[1:4].mean(0))


def test_pseudo_mode_memory_reads_back_by_content():
    memory = PseudoModeMemory(SIZE, num_slots=4, slot_dim=SIZE)
    _set(memory.to_query, SHARP * torch.eye(SIZE))
    _set(memory.to_value, torch.eye(SIZE))
    _set(memory.to_gate, 0.0, bias=10.0)  # always write
    for key in range(4):
        _assert_reads(_write_items_then_query(memory, key), torch.eye(SIZE)[key])


def test_pseudo_mode_memory_keeps_a_strong_write_against_weak_later_ones():
    """The weighted-mean write: a slot written with g ~ 1 barely moves under a g ~ 0.01 write."""
    memory = PseudoModeMemory(SIZE, num_slots=1, slot_dim=SIZE)
    _set(memory.to_query, 0.0)
    _set(memory.to_value, torch.eye(SIZE))
    gate_weight = torch.zeros(1, 2 * SIZE)
    gate_weight[0, 0] = 20.0  # strong write only for e_0
    _set(memory.to_gate, gate_weight, bias=-5.0)
    read = _write_items_then_query(memory, 0, num_items=3)  # writes e_0 (strong), e_1, e_2 (weak)
    assert read[0] > 0.95 and read[1:3].max() < 0.02


def test_pmm_reads_back_by_content():
    memory = PMM(SIZE, num_slots=4, slot_dim=SIZE, num_heads=1, usage_decay=1.0)
    _set(memory.to_query, SHARP * torch.eye(SIZE))
    for layer in (memory.to_key, memory.to_read_value, memory.out, memory.to_write):
        _set(layer, torch.eye(SIZE))
    _set(memory.to_gate, 0.0, bias=10.0)
    for key in range(4):
        _assert_reads(_write_items_then_query(memory, key), torch.eye(SIZE)[key])


def test_slot_memory_reads_back_by_content():
    memory = SlotMemory(SIZE, num_slots=SIZE, slot_dim=SIZE)
    _set(memory.to_address, SHARP * torch.eye(SIZE))  # item i is written to slot i
    _set(memory.to_query, SHARP * torch.eye(SIZE))
    _set(memory.to_value, torch.eye(SIZE))
    _set(memory.to_erase, 0.0, bias=10.0)
    _set(memory.to_gate, 0.0, bias=10.0)
    for key in range(4):
        _assert_reads(_write_items_then_query(memory, key), torch.eye(SIZE)[key])


def _miras(mix_bias: float) -> DualTierMiras:
    memory = DualTierMiras(SIZE, memory_dim=SIZE, deep_hidden=16)
    _set(memory.to_qkv, torch.eye(SIZE).repeat(3, 1))  # q = k = normalize(x), v = x
    _set(memory.out, torch.eye(SIZE))
    with torch.no_grad():
        memory.to_gates.weight.zero_()
        memory.to_gates.bias.copy_(torch.tensor([10.0, 10.0, 10.0, mix_bias]))  # beta ~ 1, theta ~ 1, alpha ~ 1
    return memory


def test_miras_fast_tier_reads_back_by_key():
    memory = _miras(mix_bias=10.0)  # read the fast tier only
    for key in range(4):
        _assert_reads(_write_items_then_query(memory, key), torch.eye(SIZE)[key])


def test_miras_deep_tier_learns_the_association_at_test_time():
    memory = _miras(mix_bias=-10.0)  # read the deep tier only
    pair = torch.eye(SIZE)[0] * 1.0  # key e_0 -> value e_0
    query = pair.expand(1, 30, SIZE)
    with torch.no_grad():
        read, _ = memory.forward_sequence(query, memory.initial_state(1), torch.zeros(1, 30, dtype=bool))
    first, last = (read[0, 0] - pair).norm(), (read[0, -1] - pair).norm()
    assert last < 0.3 * first, (first, last)


def _kv_read_by_key(key_lag: int) -> KVMemory:
    memory = KVMemory(SIZE, capacity=8, num_heads=1, head_dim=SIZE, key_lag=key_lag)
    _set(memory.to_query, SHARP * torch.eye(SIZE))
    for layer in (memory.to_key, memory.to_value, memory.out):
        _set(layer, torch.eye(SIZE))
    return memory


def _ring_read_by_key(key_lag: int) -> RingMemory:
    memory = RingMemory(SIZE, capacity=8, key_dim=SIZE, key_lag=key_lag)
    _set(memory.to_query, SHARP * torch.eye(SIZE))
    _set(memory.to_key, torch.eye(SIZE))
    return memory


@pytest.mark.parametrize("key_lag", [0, 1])
@pytest.mark.parametrize("make", [_kv_read_by_key, _ring_read_by_key], ids=["kv", "ring"])
def test_key_lag_reads_the_step_after_the_matching_one(make, key_lag):
    """Steps present e_0..e_3. With key_lag=1 the entry of step t is keyed by e_{t-1} and holds e_t,
    so the query e_k reads e_{k+1} (what followed e_k), not e_k; the same weights with key_lag=0 read e_k."""
    memory = make(key_lag)
    eye = torch.eye(SIZE)
    for key in range(3):  # e_3 is the last item: with key_lag=1 nothing followed it yet
        read = _write_items_then_query(memory, key)
        _assert_reads(read, eye[key + key_lag])
        assert read[key + 1 - key_lag].abs() < 0.01  # the other candidate is not read


def test_per_head_lags_read_what_followed_and_what_was_side_by_side():
    """key_lag [1, 0]: head 0 keys each entry by the step before (reads e_{k+1} for query e_k), head 1 by its
    own step (reads e_k); the read-out keeps the heads apart (head 0 in the first SIZE features)."""
    memory = KVMemory(SIZE, capacity=8, num_heads=2, head_dim=SIZE, key_lag=[1, 0], read_size=2 * SIZE)
    eye = torch.eye(SIZE)
    _set(memory.to_query, SHARP * torch.cat([eye, eye]))
    _set(memory.to_key, torch.cat([eye, eye]))
    _set(memory.to_value, torch.cat([eye, eye]))
    _set(memory.out, torch.eye(2 * SIZE))
    for key in range(3):
        read = _write_items_then_query(memory, key)
        _assert_reads(read[:SIZE], eye[key + 1])
        _assert_reads(read[SIZE:], eye[key])


def _history_then_reset(memory, history: torch.Tensor, query: torch.Tensor):
    """Run `history [1, T, SIZE]`, then a new episode of `query [1, T', SIZE]`, by sequence and by step."""
    with torch.no_grad():
        _, state = memory.forward_sequence(
            history, memory.initial_state(1), torch.zeros(1, history.shape[1], dtype=bool)
        )
        reset = torch.zeros(1, query.shape[1], dtype=torch.bool)
        reset[:, 0] = True
        by_sequence = memory.forward_sequence(query, state, reset)
        step_state = state
        step_reads = []
        for t in range(query.shape[1]):
            read, step_state = memory.forward_step(query[:, t], step_state, reset[:, t])
            step_reads.append(read)
    return by_sequence, (torch.stack(step_reads, 1), step_state)


@pytest.mark.parametrize("kind", ["kv", "ring"])
def test_key_lag_does_not_carry_the_previous_query_across_a_reset(kind):
    torch.manual_seed(0)
    memory = (
        KVMemory(SIZE, capacity=6, num_heads=2, head_dim=4, key_lag=1)
        if kind == "kv"
        else RingMemory(SIZE, capacity=6, key_lag=1)
    )
    gen = torch.Generator().manual_seed(1)
    query = torch.randn(1, 4, SIZE, generator=gen)
    history_a = torch.randn(1, 5, SIZE, generator=gen)
    history_b = 3.0 * torch.randn(1, 3, SIZE, generator=gen)

    results_a = _history_then_reset(memory, history_a, query)
    results_b = _history_then_reset(memory, history_b, query)
    with torch.no_grad():
        zero_key = memory._entries(torch.zeros(1, SIZE), query[:, 0])[0]  # the key built from a zero query
    for (read_a, state_a), (read_b, state_b) in zip(results_a, results_b, strict=True):
        torch.testing.assert_close(read_a, read_b)  # the pre-reset history does not matter
        torch.testing.assert_close(state_a["valid"], state_b["valid"])  # what a read sees; hidden entries may differ
        seen = state_a["valid"][..., None, None]
        torch.testing.assert_close(state_a["keys"] * seen, state_b["keys"] * seen)
        torch.testing.assert_close(state_a["keys"][:, 0], zero_key)  # slot 0: the reset step's entry
        torch.testing.assert_close(state_a["keys"][:, 1], memory._entries(query[:, 0], query[:, 1])[0])
        torch.testing.assert_close(state_a["previous"], query[:, -1])


def test_key_lag_carries_the_previous_query_into_the_next_sequence_of_an_episode():
    """Without a reset the first key of a sequence is built from the last query of the one before."""
    torch.manual_seed(0)
    memory = KVMemory(SIZE, capacity=6, num_heads=2, head_dim=4, key_lag=1)
    gen = torch.Generator().manual_seed(1)
    first, second = torch.randn(1, 3, SIZE, generator=gen), torch.randn(1, 2, SIZE, generator=gen)
    no_reset = torch.zeros(1, 5, dtype=torch.bool)
    with torch.no_grad():
        whole, _ = memory.forward_sequence(torch.cat([first, second], 1), memory.initial_state(1), no_reset)
        _, state = memory.forward_sequence(first, memory.initial_state(1), no_reset[:, :3])
        torch.testing.assert_close(state["previous"], first[:, -1])
        split, state = memory.forward_sequence(second, state, no_reset[:, 3:])
    torch.testing.assert_close(split, whole[:, 3:])
    torch.testing.assert_close(state["keys"][:, 3], memory._entries(first[:, -1], second[:, 0])[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_lag": 2}, "key_lag must be 0 or 1"),
        ({"key_lag": [1, 0, 1]}, "per head"),
        ({"age_bias": True, "age_bias_scale": 0.0}, "age_bias_scale"),
        ({"age_slope": True}, "set age_bias: true"),
        ({"age_bias_ages": 4}, "age_bias_ages"),
        ({"age_bias": True, "capacity": 8, "age_bias_ages": 9}, "between 1 and capacity"),
        ({"age_bias": True, "age_bias_ages": 0}, "between 1 and capacity"),
    ],
)
def test_bad_circular_buffer_options_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        KVMemory(SIZE, **kwargs)


def test_age_slope_adds_its_slope_times_log_age_to_every_ages_logit():
    memory = KVMemory(SIZE, capacity=6, num_heads=2, head_dim=SIZE, age_bias=True, age_slope=True)
    with torch.no_grad():
        memory.age_bias.copy_(torch.randn(2, 6, generator=torch.Generator().manual_seed(0)))
        memory.age_slope.copy_(torch.tensor([0.5, -1.0]))
    ages = torch.arange(1, 7, dtype=torch.float32)
    expected = memory.age_bias_scale * (memory.age_bias + memory.age_slope[:, None] * ages.log())
    torch.testing.assert_close(memory.age_logits(), expected)


def test_capped_age_logits_give_the_older_ages_the_oldest_own_logit():
    memory = KVMemory(SIZE, capacity=10, num_heads=2, head_dim=SIZE, age_bias=True, age_bias_ages=4, age_slope=True)
    assert memory.age_bias.shape == (2, 4)
    with torch.no_grad():
        memory.age_bias.copy_(torch.randn(2, 4, generator=torch.Generator().manual_seed(0)))
        memory.age_slope.copy_(torch.tensor([0.5, -1.0]))
    own = torch.cat([memory.age_bias, memory.age_bias[:, 3:].expand(-1, 6)], 1)
    ages = torch.arange(1, 11, dtype=torch.float32)
    torch.testing.assert_close(
        memory.age_logits(), memory.age_bias_scale * (own + memory.age_slope[:, None] * ages.log())
    )


def _weight_of_age(logits: torch.Tensor, age: int, step: int) -> torch.Tensor:
    """The read's weight on the entry `age` steps back at episode step `step` (entries 1 .. step back), per head,
    from the age logits alone (a content-blind read)."""
    return logits[:, :step].softmax(-1)[:, age - 1]


def _read_three_back_trained_on_short_episodes(slope: bool) -> tuple[float, float]:
    """The weight on the entry 3 back at steps 12 and 60 of a content-blind read trained (300 Adam steps) to read
    3 back at steps 3-12 only: ages 13-60 never get a gradient of their own."""
    memory = KVMemory(SIZE, capacity=64, num_heads=1, head_dim=SIZE, age_bias=True, age_slope=slope)
    optimizer = torch.optim.Adam(memory.parameters(), lr=1e-3)
    for _ in range(300):
        logits = memory.age_logits()
        loss = -sum(_weight_of_age(logits, 3, step).log().sum() for step in range(3, 13))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return tuple(_weight_of_age(memory.age_logits(), 3, step).item() for step in (12, 60))


def test_age_slope_carries_a_read_learned_on_short_episodes_to_longer_ones():
    """Without the slope the ages a short episode never showed keep logit 0 and take most of a long episode's
    read; the slope pushes them down with the ages it did show."""
    short_without, long_without = _read_three_back_trained_on_short_episodes(slope=False)
    short_with, long_with = _read_three_back_trained_on_short_episodes(slope=True)
    assert short_without > 0.75 and short_with > 0.75  # both learned the read where they were trained
    assert long_without < 0.5 * short_without  # and without the slope it does not carry to step 60
    assert long_with > 2 * long_without
