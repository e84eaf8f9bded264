"""SlotMemory: learned (location) write addressing over a fixed set of slots, content read."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.stepwise import StepwiseMemory


class SlotMemory(StepwiseMemory):
    """Fixed slots written through a learned soft address, read by content.

    Each step (per env) reads, then writes:

    1. Read: `attn = softmax_k(W_q h . M_k / sqrt(D))`, `r = sum_k attn_k M_k`.
    2. Write: address `w = softmax_k(W_a h)` (learned, differentiable), gate `g = sigmoid(W_g h)`,
       erase `e = sigmoid(W_e h)`, add `a = W_v h`:
       `M_k <- M_k * (1 - g w_k e) + g w_k a`. Address, gate, erase and content all get gradient
       from later reads.

    Args:
        query_size: controller output size `H`.
        num_slots: slots `K`.
        slot_dim: slot width `D` (= `read_size`).
        gate_bias_init: initial write gate bias.
        sparsity_weight: weight of the gate penalty.
        target_write_rate: the mean gate the penalty pulls toward.
    """

    def __init__(
        self,
        query_size: int = 128,
        num_slots: int = 16,
        slot_dim: int = 64,
        gate_bias_init: float = 0.0,
        sparsity_weight: float = 0.0,
        target_write_rate: float = 0.05,
    ):
        super().__init__(sparsity_weight, target_write_rate)
        if num_slots < 1 or slot_dim < 1:
            raise ConfigError(f"SlotMemory needs num_slots >= 1 and slot_dim >= 1, got {num_slots}, {slot_dim}")
        self.query_size = query_size
        self.read_size = slot_dim
        self.num_slots = num_slots
        self.slot_dim = slot_dim
        self.to_query = nn.Linear(query_size, slot_dim)
        self.to_address = nn.Linear(query_size, num_slots)
        self.to_gate = nn.Linear(query_size, 1)
        self.to_erase = nn.Linear(query_size, slot_dim)
        self.to_value = nn.Linear(query_size, slot_dim)
        nn.init.constant_(self.to_gate.bias, gate_bias_init)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        return {
            "slots": torch.zeros(batch_size, self.num_slots, self.slot_dim, device=device),
            "usage": torch.zeros(batch_size, self.num_slots, device=device),
        }

    def _usage_of(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        return state["usage"]

    def _step(self, query: torch.Tensor, state: dict[str, torch.Tensor]):
        slots = state["slots"]
        scores = torch.einsum("bkd,bd->bk", slots, self.to_query(query)) / math.sqrt(self.slot_dim)
        read = torch.einsum("bk,bkd->bd", scores.softmax(-1), slots)

        gate = torch.sigmoid(self.to_gate(query)).squeeze(-1)  # [B]
        write = (gate.unsqueeze(-1) * self.to_address(query).softmax(-1)).unsqueeze(-1)  # [B, K, 1]
        erase = torch.sigmoid(self.to_erase(query)).unsqueeze(1)  # [B, 1, D]
        slots = slots * (1 - write * erase) + write * self.to_value(query).unsqueeze(1)
        return read, {"slots": slots, "usage": state["usage"] + write.squeeze(-1)}, gate
