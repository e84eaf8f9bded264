"""Small pure functions shared by the memories: masked softmax over slots, usage entropy."""

from __future__ import annotations

import math

import torch


def masked_softmax(scores: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last dim (the slots) restricted to `valid` entries.

    Rows without a valid entry get all-zero weights (a read of an empty memory returns zeros).

    Args:
        scores: `[..., N]` attention logits.
        valid: `[..., N]` bool (broadcastable), or `None` when every slot is valid.

    Returns:
        `[..., N]` weights summing to 1 over the valid slots (or to 0).
    """
    if valid is None:
        return scores.softmax(-1)
    # A finite floor, not -inf: a row with no valid entry softmaxes to a uniform row (zeroed here), never NaN.
    weights = scores.masked_fill(~valid, torch.finfo(scores.dtype).min).softmax(-1)
    return weights * valid.any(-1, keepdim=True)


def normalized_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy of `weights [..., N]` (normalised to a distribution) divided by `log N`: 0 = one slot, 1 = uniform."""
    n = weights.shape[-1]
    p = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)
    return entropy / math.log(n) if n > 1 else torch.zeros_like(entropy)


def check_query(query: torch.Tensor, query_size: int, rank: int, name: str) -> None:
    """Raise a clear `ValueError` when a memory is called with a query of the wrong shape."""
    if query.dim() != rank or query.shape[-1] != query_size:
        shape = "[B, H]" if rank == 2 else "[B, T, H]"
        raise ValueError(
            f"{name} expects a query of shape {shape} with H = query_size = {query_size}, got "
            f"{tuple(query.shape)}; set the memory's query_size to the controller's output size"
        )
