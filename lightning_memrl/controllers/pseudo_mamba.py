"""Pseudo-Mamba: the toy recurrence `h' = tanh(W_in x + b + h)` of the Pseudo-Mamba benchmark, as a controller."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.controllers.base import Controller
from lightning_memrl.ops.pseudo_mamba_scan import pseudo_mamba_scan, pseudo_mamba_scan_choice


class PseudoMamba(Controller):
    """`h_t = tanh(W_in x_t + b + keep_t h_{t-1})`, the output is `h_t`; the state is zeroed at episode starts.

    There is no recurrent weight: the state is carried unchanged and squashed, so it saturates rather
    than decays. `forward_sequence` projects all steps at once and runs `ops.pseudo_mamba_scan`
    (a fused Triton kernel on CUDA when triton is importable, a hand-differentiated loop elsewhere).

    Args:
        hidden_size: size of the state and of the output.
        input_size: size of the inputs; defaults to `hidden_size`.
        fused: the Triton kernel (`True`; where it cannot run, the loop with a warning), the loop (`False`),
            or the kernel where it can run (`None`, the default; quiet on CPU). `sequence_kernel` tells which ran.
    """

    def __init__(self, hidden_size: int = 128, input_size: int | None = None, fused: bool | None = None):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_size = input_size or hidden_size
        self.output_size = hidden_size
        self.fused = fused
        self.in_proj = nn.Linear(self.input_size, hidden_size)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def forward_step(
        self, x: torch.Tensor, state: torch.Tensor, reset: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u = F.linear(x, self.in_proj.weight, self.in_proj.bias)
        h = torch.tanh(u + state.to(u.dtype) * (~reset).to(u.dtype)[:, None])
        return h, h

    def forward_sequence(
        self, x: torch.Tensor, state: torch.Tensor, reset: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.in_proj(x)  # [B, T, H], every step at once
        choice = pseudo_mamba_scan_choice(u, self.fused)
        self.sequence_kernel = str(choice)
        h = pseudo_mamba_scan(u, state, (~reset).to(u.dtype), fused=choice.fused)
        return h, h[:, -1]
