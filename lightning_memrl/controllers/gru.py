"""GRU controller with in-sequence resets."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.controllers.base import Controller
from lightning_memrl.ops.gru_scan import gru_scan, gru_scan_choice


class GRU(Controller):
    """A single-layer GRU (the `torch.nn.GRU` equations and parameter layout: gates r, z, n).

    `forward_sequence` computes the input projections of all steps in one matrix product, then runs
    the recurrence with `ops.gru_scan` (hand-written backward), zeroing the state of rows whose
    episode starts at a step; `forward_step` runs the same cell for one step.

    Args:
        hidden_size: size of the hidden state and of the output.
        input_size: size of the inputs; defaults to `hidden_size`.
        update_bias_init: initial bias of the update gate z. Positive values make the cell keep its
            state longer at initialisation (useful for long delays).
        fused_scan: run `forward_sequence` with the Triton kernels on CUDA (`True`; where they cannot run,
            the eager scan with a warning), the eager scan (`False`), or the Triton kernels where they can
            run (`None`, the default; quiet on CPU). `sequence_kernel` tells which ran.
    """

    def __init__(
        self,
        hidden_size: int = 128,
        input_size: int | None = None,
        update_bias_init: float = 0.0,
        fused_scan: bool | None = None,
    ):
        super().__init__()
        self.fused_scan = fused_scan
        self.hidden_size = hidden_size
        self.input_size = input_size or hidden_size
        self.output_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        self.update_bias_init = update_bias_init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        with torch.no_grad():
            h = self.hidden_size
            self.bias_ih[h : 2 * h].fill_(self.update_bias_init)
            self.bias_hh[h : 2 * h].zero_()

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def _cell(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gh = F.linear(h, self.weight_hh, self.bias_hh)
        n_size = self.hidden_size
        rz = torch.sigmoid(gi[:, : 2 * n_size] + gh[:, : 2 * n_size])
        r, z = rz[:, :n_size], rz[:, n_size:]
        n = torch.tanh(gi[:, 2 * n_size :] + r * gh[:, 2 * n_size :])
        return n + z * (h - n)

    def forward_step(
        self, x: torch.Tensor, state: torch.Tensor, reset: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = state * (~reset).unsqueeze(-1).to(state.dtype)
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        h = self._cell(gi, h.to(gi.dtype))
        return h, h

    def forward_sequence(
        self, x: torch.Tensor, state: torch.Tensor, reset: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        gi = F.linear(x, self.weight_ih, self.bias_ih)  # [B, T, 3H], all steps at once
        choice = gru_scan_choice(gi, state, self.fused_scan)
        self.sequence_kernel = str(choice)
        y = gru_scan(gi, state, (~reset).to(gi.dtype), self.weight_hh, self.bias_hh, fused=choice.fused)
        return y, y[:, -1]
