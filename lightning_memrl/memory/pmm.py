"""PMM: multi-head attention read over slots, gated write that evicts the least-used slot."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.stepwise import StepwiseMemory


class PMM(StepwiseMemory):
    """Persistent mutable memory with usage-based eviction.

    Each step (per env) reads, then writes:

    1. Read: per head `a = softmax_slots(Q(h) . K(M) / sqrt(d))` (normalised over the *slots*, not
       the heads), `r = W_o concat_heads(a V(M))`.
    2. Usage: `u <- decay * u + mean_heads(a) + g * onehot(k*)` (slots that are read stay).
    3. Write: `g = sigmoid(W_g h)`, evict the least-used slot `k* = argmin u` (before this step's
       write): `M_k* <- (1 - g) M_k* + g W_v h`. `g` reaches the loss through every later read.

    Args:
        query_size: controller output size `H`.
        num_slots: slots `K`.
        slot_dim: slot width `D` (= `read_size`).
        num_heads: read heads; divides `slot_dim`.
        usage_decay: decay of usage per step (< 1 lets old, unread slots be evicted).
        gate_bias_init: initial write gate bias.
        sparsity_weight: weight of the gate penalty.
        target_write_rate: the mean gate the penalty pulls toward.
    """

    def __init__(
        self,
        query_size: int = 128,
        num_slots: int = 16,
        slot_dim: int = 64,
        num_heads: int = 4,
        usage_decay: float = 0.99,
        gate_bias_init: float = 0.0,
        sparsity_weight: float = 0.0,
        target_write_rate: float = 0.05,
    ):
        super().__init__(sparsity_weight, target_write_rate)
        if slot_dim % num_heads:
            raise ConfigError(f"PMM slot_dim ({slot_dim}) must be divisible by num_heads ({num_heads})")
        if not 0.0 < usage_decay <= 1.0:
            raise ConfigError(f"PMM usage_decay must be in (0, 1], got {usage_decay}")
        self.query_size = query_size
        self.read_size = slot_dim
        self.num_slots = num_slots
        self.slot_dim = slot_dim
        self.num_heads = num_heads
        self.usage_decay = usage_decay
        self.to_query = nn.Linear(query_size, slot_dim)
        self.to_key = nn.Linear(slot_dim, slot_dim)
        self.to_read_value = nn.Linear(slot_dim, slot_dim)
        self.out = nn.Linear(slot_dim, slot_dim)
        self.to_write = nn.Linear(query_size, slot_dim)
        self.to_gate = nn.Linear(query_size, 1)
        nn.init.constant_(self.to_gate.bias, gate_bias_init)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        return {
            "slots": torch.zeros(batch_size, self.num_slots, self.slot_dim, device=device),
            "usage": torch.zeros(batch_size, self.num_slots, device=device),
        }

    def _usage_of(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        return state["usage"]

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.slot_dim // self.num_heads))

    def _step(self, query: torch.Tensor, state: dict[str, torch.Tensor]):
        slots, usage = state["slots"], state["usage"]
        q = self._heads(self.to_query(query))  # [B, nh, d]
        k = self._heads(self.to_key(slots))  # [B, K, nh, d]
        v = self._heads(self.to_read_value(slots))
        scores = torch.einsum("bhd,bkhd->bhk", q, k) / math.sqrt(q.shape[-1])
        attn = scores.softmax(-1)  # over slots
        read = self.out(torch.einsum("bhk,bkhd->bhd", attn, v).flatten(-2))

        gate = torch.sigmoid(self.to_gate(query)).squeeze(-1)  # [B]
        evict = F.one_hot(usage.argmin(-1), self.num_slots).to(slots.dtype)
        write = (gate.unsqueeze(-1) * evict).unsqueeze(-1)  # [B, K, 1]
        slots = slots + write * (self.to_write(query).unsqueeze(1) - slots)
        usage = self.usage_decay * usage + attn.mean(1) + write.squeeze(-1)
        return read, {"slots": slots, "usage": usage}, gate
