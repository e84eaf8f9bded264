"""The memory contract: external memories that compose with any controller.

A memory is read (and written) with a query, normally the controller output `h [B, H]`. Its state is
carried inside the agent's recurrent state, batch first, so stored-state PPO and burn-in work for it
unchanged, each env has its own memory, and `reset[b, t]` clears row `b` before step `t`.
`forward_step` T times equals `forward_sequence` (tested for every memory).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from lightning_memrl.state import State


class Memory(nn.Module, ABC):
    """An external memory read and written with a query.

    Attributes:
        query_size: feature size of the query (the controller output size).
        read_size: feature size of what a read returns, fed to the policy / value heads.
        cuda_graph_blocker: why `forward_step` cannot be replayed as a CUDA graph (it keeps state outside
            the recurrent state, or syncs with the host), or None where it can: acting is then captured.
    """

    query_size: int
    read_size: int
    cuda_graph_blocker: str | None = None

    @abstractmethod
    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """The empty memory for `batch_size` envs."""

    @abstractmethod
    def forward_sequence(self, query: torch.Tensor, state: State, reset: torch.Tensor) -> tuple[torch.Tensor, State]:
        """`query [B, T, H]`, `reset [B, T]` -> `(read [B, T, R], state after step T-1)`."""

    @abstractmethod
    def forward_step(self, query: torch.Tensor, state: State, reset: torch.Tensor) -> tuple[torch.Tensor, State]:
        """`query [B, H]`, `reset [B]` -> `(read [B, R], next state)`."""

    def auxiliary_loss(self) -> torch.Tensor | None:
        """An extra loss term from the last `forward_sequence` (for example a gate-sparsity penalty)."""
        return None

    def read_only(self) -> AbstractContextManager:
        """A context in which `forward_step` leaves no trace outside the returned state.

        Agents enter it for steps that only peek (the bootstrap value of `predict_value`). Memories
        whose whole content is the recurrent state need nothing: the peeked state is dropped. A memory
        with a shared store (`EpisodicMemory`) suspends its writes.
        """
        return nullcontext()

    def write_in_place(self) -> AbstractContextManager:
        """A context in which `forward_step` may write into the state it is given instead of a copy.

        The collector and the evaluator enter it (through the agent's `acting_in_place`) for their acting
        step, whose state they replace by the step's result anyway: a memory with a large state
        (`CircularBufferMemory`) then writes its one new entry where it is instead of copying the whole
        buffer. Outside it `forward_step` leaves its input state as it was. Memories that need nothing
        return a null context.
        """
        return nullcontext()

    def discard_final_state(self) -> AbstractContextManager:
        """A context in which `forward_sequence` may return None in place of the state after the last step.

        The PPO update enters it (through the agent's `evaluate_sequences`): it keeps only the reads. A memory
        whose final state costs work of its own (`CircularBufferMemory` gathers every slot's last writer) skips
        it; the others return their state as usual, so callers must accept both.
        """
        return nullcontext()

    def end_rollout(
        self, advantages: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor
    ) -> None:
        """Called once after each rollout's GAE with its `[T, N]` advantages, rewards and episode ends.

        Memories whose state is all recurrent need nothing; a shared store learns the outcome of its
        entries here (`EpisodicMemory`: episode returns, advantage-gated writes).
        """

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """Detached scalars describing the last call (gate mean, slot usage, ...), for logging."""
        return {}
