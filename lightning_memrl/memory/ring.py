"""RingMemory: circular buffer of the last N controller outputs, read by attention or pooling."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.circular import CircularBufferMemory

READS = ("attention", "mean")


class RingMemory(CircularBufferMemory):
    """Keeps the raw controller outputs of the last `capacity` steps of the episode.

    `read="attention"`: softmax over stored steps of `(W_q h_t) . (W_k h_s) / sqrt(d)`, returns the
    weighted mean of the stored outputs `h_s`. `read="mean"`: the plain mean of the stored outputs.
    The read-out has the controller's output size.

    Args:
        query_size: controller output size `H` (= `read_size`).
        capacity: steps kept per env.
        read: `"attention"` or `"mean"`.
        key_dim: width of the attention query / key projections.
        key_lag: 1 keys each stored output by the previous step's output (see `CircularBufferMemory`).
        age_bias: add a learned logit per entry age to the scores (with `read="mean"`: a learned
            recency weighting instead of the plain mean).
        age_bias_scale: multiplier of the age logits' parameters (see `CircularBufferMemory`).
        age_slope: a learned per-head slope on log(age) added to the age logits (see `CircularBufferMemory`).
        age_bias_ages: only this many youngest ages get their own logit (see `CircularBufferMemory`).
    """

    def __init__(
        self,
        query_size: int = 128,
        capacity: int = 256,
        read: str = "attention",
        key_dim: int = 32,
        key_lag: int = 0,
        age_bias: bool = False,
        age_bias_scale: float = 10.0,
        age_slope: bool = False,
        age_bias_ages: int | None = None,
    ):
        if read not in READS:
            raise ConfigError(f"RingMemory read must be one of {READS}, got {read!r}")
        super().__init__(
            capacity, 1, query_size, query_size, key_lag, age_bias, age_bias_scale, age_slope, age_bias_ages
        )
        self.query_size = query_size
        self.read_size = query_size
        self.read = read
        if read == "attention":
            self.to_query = nn.Linear(query_size, key_dim)
            self.to_key = nn.Linear(query_size, key_dim, bias=False)  # a key bias cancels in the softmax
        self.key_dim_attention = key_dim

    def _entries(self, key_source: torch.Tensor, value_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # one head: the raw outputs are stored; the key projection is applied at read time
        return key_source.unsqueeze(-2), value_source.unsqueeze(-2)

    def _query_heads(self, query: torch.Tensor) -> torch.Tensor:
        if self.read == "mean":  # a zero query: equal logits, the plain mean (or the age bias's weighting)
            return torch.zeros_like(query).unsqueeze(-2)
        # (W_q h) . (W_k h_s) = (W_k^T W_q h) . h_s: one projection of the query instead of one per
        # stored step, so a read costs O(N H), not O(N H key_dim).
        query_back = (self.to_query(query) @ self.to_key.weight).unsqueeze(-2)  # [B, T, 1, H]
        return query_back / math.sqrt(self.key_dim_attention)

    def _output(self, read: torch.Tensor) -> torch.Tensor:
        return read.squeeze(-2)
