"""ParallelMemory: several memories read with the same query, their reads concatenated (optionally gated).

This is how an agent holds more than one memory (the Infinity agent's Dual-Tier Miras working
memory beside a FAISS episodic long-term store): `RecurrentPPO` takes one `memory`, and this is one.
The state is the tuple of the members' states, so stored states, burn-in and per-env resets work
member by member exactly as they do for each memory alone.

`fusion="gate"` is the Infinity agent's learned fusion: a gate per memory computed from the query,
`g_i = sigmoid(w_i . query + b_i)`, scales that memory's read before the concatenation, so the policy
can turn a memory up or down step by step. The gates train through the PPO loss like any layer; their
means are reported as `gate_<i>_mean`. Concatenation (`fusion="concat"`) stays the default: the heads
already weigh the reads, and no benchmark here has shown the gate better.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager

import torch
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.base import Memory
from lightning_memrl.state import State

FUSIONS = ("concat", "gate")


class ParallelMemory(Memory):
    """Memories side by side: `read = cat([g_i * m_i.read(query) for each member i], -1)`, `g_i = 1` by default.

    Args:
        memories: the members, all with the same `query_size` (the controller output size). Their
            auxiliary losses are summed; their diagnostics are logged as `<index>_<name>/<key>`.
        fusion: `"concat"` (plain concatenation) or `"gate"` (a learned gate per memory from the query,
            see the module doc).
    """

    def __init__(self, memories: Sequence[Memory], fusion: str = "concat"):
        super().__init__()
        if len(memories) < 1:
            raise ConfigError("ParallelMemory needs at least one memory")
        if fusion not in FUSIONS:
            raise ConfigError(f"ParallelMemory fusion must be one of {FUSIONS}, got {fusion!r}")
        sizes = [m.query_size for m in memories]
        if len(set(sizes)) != 1:
            raise ConfigError(f"ParallelMemory members must share one query_size, got {sizes}")
        self.memories = nn.ModuleList(memories)
        self.query_size = sizes[0]
        self.read_size = sum(m.read_size for m in memories)
        self.fusion = fusion
        self.gate: nn.Linear | None = None
        if fusion == "gate":  # zero weights: every gate starts at sigmoid(0) = 0.5 for any query
            self.gate = nn.Linear(self.query_size, len(memories))
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)
        self._gate_means: torch.Tensor | None = None

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> tuple[State, ...]:
        return tuple(m.initial_state(batch_size, device) for m in self.memories)

    def forward_step(
        self, query: torch.Tensor, state: tuple[State, ...], reset: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[State, ...]]:
        """`query [B, H]`, `reset [B]` -> `(read [B, sum of read sizes], next states)`."""
        outs = [m.forward_step(query, s, reset) for m, s in zip(self.memories, state, strict=True)]
        return self._fuse(query, [read for read, _ in outs], diagnose=False), tuple(s for _, s in outs)

    def forward_sequence(
        self, query: torch.Tensor, state: tuple[State, ...], reset: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[State, ...]]:
        """`query [B, T, H]`, `reset [B, T]` -> `(read [B, T, sum of read sizes], states after T-1)`."""
        outs = [m.forward_sequence(query, s, reset) for m, s in zip(self.memories, state, strict=True)]
        return self._fuse(query, [read for read, _ in outs]), tuple(s for _, s in outs)

    def _fuse(self, query: torch.Tensor, reads: list[torch.Tensor], diagnose: bool = True) -> torch.Tensor:
        """`query [..., H]`, reads `[..., R_i]` -> `[..., sum R_i]`, each read scaled by its gate when gated.

        `diagnose`: keep the gates' means for `diagnostics` (training's sequences; an acting step keeps no host
        state, so it can be replayed as a CUDA graph)."""
        if self.gate is None:
            return torch.cat(reads, dim=-1)
        gates = torch.sigmoid(self.gate(query))  # [..., M]
        if diagnose:
            self._gate_means = gates.detach().reshape(-1, gates.shape[-1]).mean(0)
        return torch.cat([gates[..., i : i + 1] * read for i, read in enumerate(reads)], dim=-1)

    def read_only(self) -> AbstractContextManager:
        """Every member's `read_only()` at once (an episodic member suspends its writes)."""
        return self._every_member("read_only")

    def write_in_place(self) -> AbstractContextManager:
        """Every member's `write_in_place()` at once."""
        return self._every_member("write_in_place")

    def discard_final_state(self) -> AbstractContextManager:
        """Every member's `discard_final_state()` at once (a member may then return None as its state)."""
        return self._every_member("discard_final_state")

    @contextmanager
    def _every_member(self, context: str) -> Iterator[None]:
        with ExitStack() as stack:
            for m in self.memories:
                stack.enter_context(getattr(m, context)())
            yield

    def end_rollout(
        self, advantages: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor
    ) -> None:
        """Every member's `end_rollout`."""
        for m in self.memories:
            m.end_rollout(advantages, rewards, terminated, truncated)

    def auxiliary_loss(self) -> torch.Tensor | None:
        losses = [loss for m in self.memories if (loss := m.auxiliary_loss()) is not None]
        return torch.stack(losses).sum() if losses else None

    def diagnostics(self) -> dict[str, torch.Tensor]:
        out = {}
        for i, m in enumerate(self.memories):
            prefix = f"{i}_{type(m).__name__}"
            out.update({f"{prefix}/{key}": value for key, value in m.diagnostics().items()})
        if self._gate_means is not None:
            out.update({f"gate_{i}_mean": g for i, g in enumerate(self._gate_means)})
        return out
