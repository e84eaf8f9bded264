"""What consolidation ("sleep") reads from an agent's `EpisodicMemory`: pairs, statistics, retrieval quality.

`MemoryConsolidation` draws contrastive pairs here, trains the memory's key encoder with hippotorch's
`Consolidator.update`, then calls `EpisodicMemory.reencode_keys` (and has a trained index rebuilt).
"""

from __future__ import annotations

import torch

from lightning_memrl.hippocampal.quality import retrieval_quality
from lightning_memrl.memory.episodic import EpisodicMemory


@torch.no_grad()
def consolidation_pairs(
    memory: EpisodicMemory, batch_size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """`(anchors [B, H], positives [B, H], returns [B])` for `Consolidator.update`, or None when no pair exists.

    An anchor is a stored entry's query whose episode has ended and whose successor (the next entry of
    its episode) is still stored; the positive is that successor's query. Entries are drawn with
    probability `softmax(R / max(std R, 0.1))` over their episode returns (hippotorch's weighting).
    """
    store = memory.store
    order = store.ordered_slots()
    succ_slots, stored = store.slots_of(store.successors[order])
    returns = store.returns[order]
    eligible = (stored & torch.isfinite(returns)).nonzero()[:, 0]
    if eligible.numel() == 0:
        return None
    r = returns[eligible].cpu()
    probs = (r / r.std(unbiased=False).clamp_min(0.1)).softmax(0) if r.numel() > 1 else torch.ones(1)
    picks = eligible[torch.multinomial(probs, batch_size, replacement=True, generator=generator).to(order.device)]
    return store.values[order[picks]], store.values[succ_slots[picks]], returns[picks]


def consolidation_stats(memory: EpisodicMemory) -> dict[str, float]:
    """Store size, entries whose episode return is known, pairs available and their mean age in ticks."""
    store = memory.store
    order = store.ordered_slots()
    _, stored = store.slots_of(store.successors[order])
    known = torch.isfinite(store.returns[order])
    ages = (store.clock - store.ticks[order]).float()
    pairs = stored & known
    return {
        "store_size": float(store.size),
        "entries_with_return": float(known.sum()),
        "pairs": float(pairs.sum()),
        "pair_age": float(ages[pairs].mean()) if bool(pairs.any()) else float("nan"),
    }


@torch.no_grad()
def store_retrieval_quality(
    memory: EpisodicMemory, k: int = 5, sample: int = 256, generator: torch.Generator | None = None
) -> dict[str, float]:
    """`retrieval_quality` of the entries whose episode has ended: up to `sample` of them query (encoded as a
    read encodes its query) the others' keys, neighbours from the query's own episode skipped."""
    store = memory.store
    order = store.ordered_slots()
    known = order[torch.isfinite(store.returns[order])]
    queries = known[torch.randperm(known.numel(), generator=generator)[:sample].to(known.device)]
    return retrieval_quality(
        memory.encode_query(store.values[queries]),
        store.keys[known],
        store.returns[queries],
        store.returns[known],
        store.episodes[queries],
        store.episodes[known],
        k=k,
    )
