"""What the data module needs from an agent: act on a batch of observations and states."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import NamedTuple, Protocol, runtime_checkable

import torch

from lightning_memrl.state import State


class Action(NamedTuple):
    """One acting step for a batch of envs: `action, log_prob, value [N]` and the next state."""

    action: torch.Tensor
    log_prob: torch.Tensor
    value: torch.Tensor
    state: State


@runtime_checkable
class RecurrentPolicy(Protocol):
    """A recurrent policy the collector can drive (the agent implements it).

    A policy may also define `cuda_graph_blockers() -> list[str]`: why its acting step cannot be replayed
    as a CUDA graph (empty: it can). Without it, acting on CUDA is captured when `data.cuda_graphs` allows
    and the capture checks pass (see `data.cuda_graphs`). And `acting_in_place()`, a context in which
    `act` may write into the state it is given: the collector and the evaluator enter it, as they replace
    that state by the step's result anyway (see `acting_in_place` below).
    """

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """The recurrent state of `batch_size` fresh episodes."""

    def act(
        self,
        obs: torch.Tensor,
        state: State,
        reset: torch.Tensor,
        *,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> Action:
        """Choose actions for `obs [N, D]` (sampled with `generator`, or greedy)."""

    def predict_value(self, obs: torch.Tensor, state: State, reset: torch.Tensor) -> torch.Tensor:
        """V(obs) `[N]` for observations that follow `state` (used to bootstrap)."""

    def advance_state(self, obs: torch.Tensor, state: State, reset: torch.Tensor) -> State:
        """The state after steps `obs [N, T, D]`, `reset [N, T]` from `state`, without acting or writing
        to a memory: how training replays a burn-in prefix."""

    def end_rollout(
        self, advantages: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor
    ) -> None:
        """Learn a finished rollout's outcome (`[T, N]` each, after GAE; the collector calls it once per rollout)."""


def acting_in_place(policy: RecurrentPolicy) -> AbstractContextManager:
    """The policy's `acting_in_place()` context, or a null one for a policy without it."""
    enter = getattr(policy, "acting_in_place", None)
    return enter() if enter is not None else nullcontext()
