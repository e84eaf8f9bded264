"""KVMemory: key-value store with a circular write pointer and multi-head attention read."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.circular import CircularBufferMemory


class KVMemory(CircularBufferMemory):
    """Writes `(W_k h, W_v h)` every step at a circular pointer; reads by attention with `W_q h`.

    The read attends over the last `capacity` steps of the episode (softmax over stored entries),
    so the reward at a query trains the key and value projections of the step that held the answer
    (when both are inside the BPTT window): attention over stored steps is the write path.

    Args:
        query_size: controller output size `H`.
        capacity: entries kept per env (how far back it reaches).
        num_heads: attention heads.
        head_dim: per-head key / value width.
        read_size: size of the read-out (default `num_heads * head_dim`).
        key_lag: 1 keys each entry by the previous step's query (see `CircularBufferMemory`): a query
            naming a key then reads the step after it, as associative recall asks. A list gives each
            head its own lag (`[1, 1, 0, 0]`: two heads read "what followed", two "what was").
        age_bias: add a learned per-head logit per entry age to the scores (see
            `CircularBufferMemory`): reads "the step k back" without a content match.
        age_bias_scale: multiplier of the age logits' parameters (see `CircularBufferMemory`).
        age_slope: a learned per-head slope on log(age) added to the age logits (see `CircularBufferMemory`).
        age_bias_ages: only this many youngest ages get their own logit (see `CircularBufferMemory`).
    """

    def __init__(
        self,
        query_size: int = 128,
        capacity: int = 256,
        num_heads: int = 4,
        head_dim: int = 16,
        read_size: int | None = None,
        key_lag: int | list[int] = 0,
        age_bias: bool = False,
        age_bias_scale: float = 10.0,
        age_slope: bool = False,
        age_bias_ages: int | None = None,
    ):
        if num_heads < 1 or head_dim < 1:
            raise ConfigError(f"KVMemory needs num_heads >= 1 and head_dim >= 1, got {num_heads}, {head_dim}")
        super().__init__(
            capacity, num_heads, head_dim, head_dim, key_lag, age_bias, age_bias_scale, age_slope, age_bias_ages
        )
        width = num_heads * head_dim
        self.query_size = query_size
        self.read_size = read_size or width
        self.to_query = nn.Linear(query_size, width)
        self.to_key = nn.Linear(query_size, width)
        self.to_value = nn.Linear(query_size, width)
        self.out = nn.Linear(width, self.read_size)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.key_dim))

    def _entries(self, key_source: torch.Tensor, value_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split(self.to_key(key_source)), self._split(self.to_value(value_source))

    def _query_heads(self, query: torch.Tensor) -> torch.Tensor:
        return self._split(self.to_query(query)) / math.sqrt(self.key_dim)

    def _output(self, read: torch.Tensor) -> torch.Tensor:
        return self.out(read.flatten(-2))
