"""Exact cosine top-k: the one search that every episodic store here runs (on unit vectors).

`VectorStore` (the agents' episodic memory, before and beside its FAISS index), `MemoryStore` (episodes
of the replay buffer) and `retrieval_quality` all rank by this function.
"""

from __future__ import annotations

import torch


def top_k_similar(
    queries: torch.Tensor, keys: torch.Tensor, k: int, hidden: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The `k` keys most similar to each query: `(similarity [Q, k'], index [Q, k'])`, `k' = min(k, N)`.

    Args:
        queries: unit vectors `[Q, D]`.
        keys: unit vectors `[N, D]`.
        k: neighbours per query.
        hidden: `[Q, N]` (or broadcastable) true where a key may not be returned; such places, when
            fewer than `k'` keys are visible, come back with similarity `-inf` (their index is arbitrary).
    """
    scores = queries @ keys.T
    if hidden is not None:
        scores = scores.masked_fill(hidden, float("-inf"))
    return scores.topk(min(k, keys.shape[0]), dim=-1)
