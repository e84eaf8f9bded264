"""Base for memories whose write depends on their own contents (slot choice, usage, erase).

Such a recurrence has no parallel form, so `forward_sequence` runs the step T times; subclasses
write one step (`_step`) and get both entry points, the reset handling, the gate-sparsity penalty
and the diagnostics from here.
"""

from __future__ import annotations

from abc import abstractmethod

import torch

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.base import Memory
from lightning_memrl.memory.functional import check_query, normalized_entropy
from lightning_memrl.state import State, mask_state


class StepwiseMemory(Memory):
    """A memory defined by one step `_step(query, state) -> (read, state, gate)`.

    Args:
        sparsity_weight: weight of the gate-sparsity penalty `(mean gate - target_write_rate)^2`
            returned by `auxiliary_loss` (0 turns it off).
        target_write_rate: the mean write gate the penalty pulls toward (for example `1 / horizon`
            when one write per episode is enough).
    """

    def __init__(self, sparsity_weight: float = 0.0, target_write_rate: float = 0.05):
        super().__init__()
        if sparsity_weight < 0:
            raise ConfigError(f"sparsity_weight must be >= 0, got {sparsity_weight}")
        if not 0.0 <= target_write_rate <= 1.0:
            raise ConfigError(f"target_write_rate must be in [0, 1], got {target_write_rate}")
        self.sparsity_weight = sparsity_weight
        self.target_write_rate = target_write_rate
        self._gates: torch.Tensor | None = None
        self._usage: torch.Tensor | None = None

    @abstractmethod
    def _step(self, query: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        """One step on an already-reset state: `query [B, H]` -> `(read [B, R], state, gate [B])`."""

    @abstractmethod
    def _usage_of(self, state: State) -> torch.Tensor:
        """Per-slot usage `[B, K]` of a state (for the usage-entropy diagnostic)."""

    def forward_step(self, query: torch.Tensor, state: State, reset: torch.Tensor) -> tuple[torch.Tensor, State]:
        check_query(query, self.query_size, 2, type(self).__name__)
        read, state, _ = self._step(query, mask_state(state, reset))
        return read, state

    def forward_sequence(self, query: torch.Tensor, state: State, reset: torch.Tensor) -> tuple[torch.Tensor, State]:
        check_query(query, self.query_size, 3, type(self).__name__)
        reads, gates = [], []
        for t in range(query.shape[1]):
            read, state, gate = self._step(query[:, t], mask_state(state, reset[:, t]))
            reads.append(read)
            gates.append(gate)
        self._gates = torch.stack(gates, 1)  # [B, T], kept with its graph for the penalty
        self._usage = self._usage_of(state).detach()
        return torch.stack(reads, 1), state

    def auxiliary_loss(self) -> torch.Tensor | None:
        if self._gates is None or self.sparsity_weight == 0:
            return None
        return self.sparsity_weight * (self._gates.mean() - self.target_write_rate) ** 2

    def diagnostics(self) -> dict[str, torch.Tensor]:
        if self._gates is None:
            return {}
        gates = self._gates.detach()
        return {
            "gate_mean": gates.mean(),
            "gate_sparsity": (gates < 0.1).float().mean(),
            "write_rate": (gates > 0.5).float().mean(),
            "usage_entropy": normalized_entropy(self._usage).mean(),
        }
