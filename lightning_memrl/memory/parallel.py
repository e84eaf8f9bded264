"""ParallelMemory: several memories read with the same query, their reads concatenated.

This is how an agent holds more than one memory (the Infinity agent's Dual-Tier Miras working
memory beside a FAISS episodic long-term store): `RecurrentPPO` takes one `memory`, and this is one.
The state is the tuple of the members' states, so stored states, burn-in and per-env resets work
member by member exactly as they do for each memory alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.base import Memory
from lightning_memrl.state import State


class ParallelMemory(Memory):
    """Memories side by side: `read = cat([m.read(query) for m in memories], -1)`.

    Args:
        memories: the members, all with the same `query_size` (the controller output size). Their
            auxiliary losses are summed; their diagnostics are logged as `<index>_<name>/<key>`.
    """

    def __init__(self, memories: Sequence[Memory]):
        super().__init__()
        if len(memories) < 1:
            raise ConfigError("ParallelMemory needs at least one memory")
        sizes = [m.query_size for m in memories]
        if len(set(sizes)) != 1:
            raise ConfigError(f"ParallelMemory members must share one query_size, got {sizes}")
        self.memories = nn.ModuleList(memories)
        self.query_size = sizes[0]
        self.read_size = sum(m.read_size for m in memories)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> tuple[State, ...]:
        return tuple(m.initial_state(batch_size, device) for m in self.memories)

    def forward_step(
        self, query: torch.Tensor, state: tuple[State, ...], reset: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[State, ...]]:
        """`query [B, H]`, `reset [B]` -> `(read [B, sum of read sizes], next states)`."""
        outs = [m.forward_step(query, s, reset) for m, s in zip(self.memories, state, strict=True)]
        return torch.cat([read for read, _ in outs], dim=-1), tuple(s for _, s in outs)

    def forward_sequence(
        self, query: torch.Tensor, state: tuple[State, ...], reset: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[State, ...]]:
        """`query [B, T, H]`, `reset [B, T]` -> `(read [B, T, sum of read sizes], states after T-1)`."""
        outs = [m.forward_sequence(query, s, reset) for m, s in zip(self.memories, state, strict=True)]
        return torch.cat([read for read, _ in outs], dim=-1), tuple(s for _, s in outs)

    @contextmanager
    def read_only(self) -> Iterator[None]:
        """Every member's `read_only()` at once (an episodic member suspends its writes)."""
        with ExitStack() as stack:
            for m in self.memories:
                stack.enter_context(m.read_only())
            yield

    def auxiliary_loss(self) -> torch.Tensor | None:
        losses = [loss for m in self.memories if (loss := m.auxiliary_loss()) is not None]
        return torch.stack(losses).sum() if losses else None

    def diagnostics(self) -> dict[str, torch.Tensor]:
        out = {}
        for i, m in enumerate(self.memories):
            prefix = f"{i}_{type(m).__name__}"
            out.update({f"{prefix}/{key}": value for key, value in m.diagnostics().items()})
        return out
