"""Retrieval quality of an episodic store (hippotorch's `report_quality`): do neighbours share the return?

Consolidation should organise the keys so that a query's nearest stored entries come from episodes
that went alike. `retrieval_quality` measures that on any store: for each query, its `k` most
similar keys outside the query's own group (its episode: a neighbour from the same episode would
share the return trivially) and the share of them whose return equals the query's.
"""

from __future__ import annotations

import torch

from lightning_memrl.hippocampal.search import top_k_similar


@torch.no_grad()
def retrieval_quality(
    queries: torch.Tensor,
    keys: torch.Tensor,
    query_returns: torch.Tensor,
    key_returns: torch.Tensor,
    query_groups: torch.Tensor,
    key_groups: torch.Tensor,
    *,
    k: int = 5,
    tolerance: float = 1e-6,
) -> dict[str, float]:
    """Neighbour agreement of returns.

    Args:
        queries: unit query embeddings `[Q, E]` (as a read would encode them).
        keys: unit stored keys `[N, E]`.
        query_returns: episode return of each query `[Q]`.
        key_returns: episode return of each key `[N]`.
        query_groups: episode id of each query `[Q]`.
        key_groups: episode id of each key `[N]`; keys of the query's own episode are skipped.
        k: neighbours per query.
        tolerance: returns closer than this count as the same.

    Returns:
        `same_return`: mean over queries of the share of their neighbours with the same return (NaN when
        no query has a neighbour); `same_return_chance`: the same share over every visible key (what a
        random neighbour would give); `sharpness`: mean cosine similarity of the neighbours; `queries`:
        queries with at least one neighbour.
    """
    hidden = query_groups[:, None] == key_groups[None, :]  # [Q, N]
    same = (key_returns[None, :] - query_returns[:, None]).abs() <= tolerance  # [Q, N]
    sims, index = top_k_similar(queries, keys, k, hidden)
    found = torch.isfinite(sims)
    agree = same.gather(1, index) & found
    has = found.any(dim=1)
    visible = (~hidden).sum(dim=1)
    nan = float("nan")
    per_query = agree.sum(1) / found.sum(1).clamp_min(1)
    chance = (same & ~hidden).sum(1) / visible.clamp_min(1)
    return {
        "same_return": float(per_query[has].mean()) if has.any() else nan,
        "same_return_chance": float(chance[has].mean()) if has.any() else nan,
        "sharpness": float(sims[found].mean()) if found.any() else nan,
        "queries": float(has.sum()),
    }
