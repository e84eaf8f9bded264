"""The controller contract: one sequence core interface for GRU, LSTM, Mamba2, attention, ...

`reset[b, t]` is true when step `t` is the first of a new episode for batch row `b`: the state is
zeroed *before* step `t`, inside the call, so one call can span episode boundaries. Running
`forward_step` T times equals `forward_sequence` on the same inputs (tested for every controller).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import torch
from torch import nn

from lightning_memrl.state import State


class Controller(nn.Module, ABC):
    """A recurrent sequence core.

    Attributes:
        input_size: feature size `D` of the inputs.
        output_size: feature size `H` of the outputs.
        sequence_kernel: what the last `forward_sequence` ran, where the controller chooses between a fused
            kernel and a PyTorch path (`"triton"`, `"eager (the inputs are on cpu)"`); None where it has no choice.
        cuda_graph_blocker: why `forward_step` cannot be replayed as a CUDA graph (host syncs, state outside
            the returned state), or None where it can: acting is then captured.
        in_place: whether `forward_step` may write into the state it is given (inside `write_in_place()`).
        final_state_discarded: whether `forward_sequence` may return None as its state (inside
            `discard_final_state()`).
    """

    input_size: int
    output_size: int
    sequence_kernel: str | None = None
    cuda_graph_blocker: str | None = None
    in_place: bool = False
    final_state_discarded: bool = False

    def write_in_place(self) -> AbstractContextManager:
        """A context in which `forward_step` may write into the state it is given instead of a copy.

        The collector and the evaluator enter it (through the agent's `acting_in_place`) for their acting step,
        whose state they replace by the step's result anyway: every controller inside this one takes it, and one
        with a large state (the Transformer's KV ring) writes its one new entry where it is instead of copying
        the whole cache. Outside it `forward_step` leaves its input state as it was.
        """
        return self._flag_every_controller("in_place")

    def discard_final_state(self) -> AbstractContextManager:
        """A context in which `forward_sequence` may return None in place of a state after the last step.

        The PPO update enters it (through the agent's `evaluate_sequences`): it keeps only the outputs. Every
        controller inside this one takes it; one whose final state costs work of its own (the Transformer
        gathers each ring slot's last writer) skips that work and returns None for its part of the state.
        """
        return self._flag_every_controller("final_state_discarded")

    @contextmanager
    def _flag_every_controller(self, flag: str) -> Iterator[None]:
        controllers = [m for m in self.modules() if isinstance(m, Controller)]
        for controller in controllers:
            setattr(controller, flag, True)
        try:
            yield
        finally:
            for controller in controllers:
                setattr(controller, flag, False)

    @abstractmethod
    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """The zero state for `batch_size` rows (the state of a fresh episode)."""

    @abstractmethod
    def forward_sequence(self, x: torch.Tensor, state: State, reset: torch.Tensor) -> tuple[torch.Tensor, State]:
        """Run a sequence: `x [B, T, D]`, `reset [B, T]` -> `(y [B, T, H], state after step T-1)`."""

    @abstractmethod
    def forward_step(self, x: torch.Tensor, state: State, reset: torch.Tensor) -> tuple[torch.Tensor, State]:
        """Run one step: `x [B, D]`, `reset [B]` -> `(y [B, H], next state)`."""

    def forward(self, x: torch.Tensor, state: State, reset: torch.Tensor) -> tuple[torch.Tensor, State]:
        """Dispatch on rank: `[B, D]` runs one step, `[B, T, D]` a sequence."""
        if x.dim() == 2:
            return self.forward_step(x, state, reset)
        return self.forward_sequence(x, state, reset)


def kernels_ran(module: nn.Module) -> dict[str, str]:
    """What the controllers inside `module` ran in their last `forward_sequence`: class name -> kernel
    (`{"GRU": "triton"}`, `{"Mamba2Block": "torch (the inputs are on cpu)"}`); empty where none chooses."""
    ran: dict[str, list[str]] = {}
    for sub in module.modules():
        kernel = getattr(sub, "sequence_kernel", None) if isinstance(sub, Controller) else None
        if kernel is not None and kernel not in ran.setdefault(type(sub).__name__, []):
            ran[type(sub).__name__].append(kernel)
    return {name: ", ".join(kernels) for name, kernels in ran.items() if kernels}
