"""Small instances of every memory, shared by the memory tests."""

import torch

from lightning_memrl.memory import (
    PMM,
    DualTierMiras,
    KVMemory,
    ParallelMemory,
    PseudoModeMemory,
    RingMemory,
    SlotMemory,
)

QUERY = 8


def _random_age_bias(memory):
    """Age logits start at zero, which would make the age path invisible to the contract tests."""
    with torch.no_grad():
        memory.age_bias.copy_(torch.randn(memory.age_bias.shape, generator=torch.Generator().manual_seed(3)))
        if memory.age_slope is not None:
            memory.age_slope.copy_(torch.randn(memory.age_slope.shape, generator=torch.Generator().manual_seed(4)))
    return memory


def _random_gate(memory):
    """The fusion gate starts query-blind (zero weights), which would hide its dependence on the query."""
    with torch.no_grad():
        memory.gate.weight.copy_(torch.randn(memory.gate.weight.shape, generator=torch.Generator().manual_seed(4)))
    return memory


MEMORIES = {
    "pseudo_mode": lambda: PseudoModeMemory(QUERY, num_slots=4, slot_dim=6),
    "pmm": lambda: PMM(QUERY, num_slots=4, slot_dim=8, num_heads=2),
    "slot": lambda: SlotMemory(QUERY, num_slots=4, slot_dim=6),
    "kv": lambda: KVMemory(QUERY, capacity=5, num_heads=2, head_dim=3),
    "ring_attention": lambda: RingMemory(QUERY, capacity=4),
    "ring_mean": lambda: RingMemory(QUERY, capacity=3, read="mean"),
    "kv_lag": lambda: KVMemory(QUERY, capacity=5, num_heads=2, head_dim=3, key_lag=1),
    "ring_lag": lambda: RingMemory(QUERY, capacity=4, key_lag=1),
    # the memory of configs/agents/memory_agent.yaml, small: lagged and unlagged heads, age logits
    "kv_mixed_lags_age": lambda: _random_age_bias(
        KVMemory(QUERY, capacity=5, num_heads=3, head_dim=3, key_lag=[1, 0, 1], age_bias=True)
    ),
    "kv_age": lambda: _random_age_bias(KVMemory(QUERY, capacity=5, num_heads=2, head_dim=3, age_bias=True)),
    # a capacity longer than the episodes of the tests: a sequence read attends over only the newest carried
    # ranks some step sees (16 of 40 here), which must change nothing
    "kv_age_long": lambda: _random_age_bias(
        KVMemory(QUERY, capacity=40, num_heads=2, head_dim=3, key_lag=[1, 0], age_bias=True)
    ),
    # the same with a slope on log(age) shared by every age
    "kv_age_slope": lambda: _random_age_bias(
        KVMemory(QUERY, capacity=40, num_heads=2, head_dim=3, key_lag=[1, 0], age_bias=True, age_slope=True)
    ),
    # the same with only the 6 youngest ages logits of their own, the older sharing the sixth's
    "kv_age_capped": lambda: _random_age_bias(
        KVMemory(QUERY, capacity=40, num_heads=2, head_dim=3, key_lag=[1, 0], age_bias=True, age_bias_ages=6)
    ),
    "ring_mean_age": lambda: _random_age_bias(RingMemory(QUERY, capacity=3, read="mean", age_bias=True)),
    "miras": lambda: DualTierMiras(QUERY, memory_dim=6, deep_hidden=5, chunk_size=4),
    "parallel": lambda: ParallelMemory(
        [
            DualTierMiras(QUERY, memory_dim=6, deep_hidden=5, chunk_size=4),
            KVMemory(QUERY, capacity=5, num_heads=2, head_dim=3),
        ]
    ),
    "parallel_gate": lambda: _random_gate(
        ParallelMemory(
            [
                DualTierMiras(QUERY, memory_dim=6, deep_hidden=5, chunk_size=4),
                KVMemory(QUERY, capacity=5, num_heads=2, head_dim=3),
            ],
            fusion="gate",
        )
    ),
}
