"""PseudoModeMemory: K slots, content read, gated write into the least-used slot."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.functional import masked_softmax
from lightning_memrl.memory.stepwise import StepwiseMemory


class PseudoModeMemory(StepwiseMemory):
    """Slot memory with a learned write gate and least-used-slot writes.

    Each step (per env) reads, then writes:

    1. Read: `attn = softmax_k(q . M_k / sqrt(D))` over the written slots, `q = W_q h`; `r = sum_k attn_k M_k`.
    2. Gate: `g = sigmoid(W_g [h, r])`, one write strength per env and step.
    3. Write `v = W_v h` into the least-used slot `k*` (`argmin mass`) as a *weighted mean*:
       `M_k* <- (mass_k* M_k* + g v) / (mass_k* + g)`, `mass_k* <- mass_k* + g`.

    Why the weighted mean: with the usual `M <- (1 - g) M + g v` a sparse gate (g ~ 1/H) makes the
    stored content, and so the read and the gate's gradient, ~g times smaller, and the probe of that
    design stayed at chance. Here the slot holds the content at full scale whatever the gate's size;
    the gate decides *which* steps a slot keeps (a strong write is not diluted by weak later ones, and
    a heavily written slot is not chosen again), and it gets gradient from every later read of the
    slot within the BPTT window. The slot choice itself is discrete (argmin, ties to the lowest index).

    Args:
        query_size: controller output size `H`.
        num_slots: slots `K`.
        slot_dim: slot width `D` (= `read_size`).
        gate_bias_init: initial gate bias (0 -> g ~ 0.5, writes start strong, so gradient flows).
        sparsity_weight: weight of the gate penalty `(mean g - target_write_rate)^2` (seed default 1.0).
        target_write_rate: the mean gate the penalty pulls toward (seed: `1 / horizon`).
    """

    def __init__(
        self,
        query_size: int = 128,
        num_slots: int = 16,
        slot_dim: int = 64,
        gate_bias_init: float = 0.0,
        sparsity_weight: float = 0.01,
        target_write_rate: float = 0.05,
    ):
        super().__init__(sparsity_weight, target_write_rate)
        if num_slots < 1 or slot_dim < 1:
            raise ConfigError(f"PseudoModeMemory needs num_slots >= 1 and slot_dim >= 1, got {num_slots}, {slot_dim}")
        self.query_size = query_size
        self.read_size = slot_dim
        self.num_slots = num_slots
        self.slot_dim = slot_dim
        self.to_query = nn.Linear(query_size, slot_dim)
        self.to_value = nn.Linear(query_size, slot_dim)
        self.to_gate = nn.Linear(query_size + slot_dim, 1)
        nn.init.constant_(self.to_gate.bias, gate_bias_init)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        return {
            "slots": torch.zeros(batch_size, self.num_slots, self.slot_dim, device=device),
            "mass": torch.zeros(batch_size, self.num_slots, device=device),
        }

    def _usage_of(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        return state["mass"]

    def _step(self, query: torch.Tensor, state: dict[str, torch.Tensor]):
        slots, mass = state["slots"], state["mass"]
        q = self.to_query(query)
        scores = torch.einsum("bkd,bd->bk", slots, q) / math.sqrt(self.slot_dim)
        attn = masked_softmax(scores, mass > 0)
        read = torch.einsum("bk,bkd->bd", attn, slots)

        gate = torch.sigmoid(self.to_gate(torch.cat([query, read], -1))).squeeze(-1)  # [B]
        target = F.one_hot(mass.argmin(-1), self.num_slots).to(slots.dtype)  # [B, K]
        added = gate.unsqueeze(-1) * target  # write mass per slot
        new_mass = mass + added
        share = added / new_mass.clamp_min(1e-12)  # fraction of the slot that is the new value
        slots = slots + share.unsqueeze(-1) * (self.to_value(query).unsqueeze(1) - slots)
        return read, {"slots": slots, "mass": new_mass}, gate
