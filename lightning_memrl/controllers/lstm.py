"""LSTM controller with in-sequence resets."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.controllers.base import Controller
from lightning_memrl.ops.lstm_scan import lstm_scan


class LSTM(Controller):
    """A single-layer LSTM (the `torch.nn.LSTM` equations and parameter layout: gates i, f, g, o).

    The state is the tuple `(h [B, H], c [B, H])`; both are zeroed where an episode starts.

    Args:
        hidden_size: size of the hidden and cell states and of the output.
        input_size: size of the inputs; defaults to `hidden_size`.
        forget_bias_init: initial bias of the forget gate (1.0 keeps memories longer at the start).
    """

    def __init__(self, hidden_size: int = 128, input_size: int | None = None, forget_bias_init: float = 1.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_size = input_size or hidden_size
        self.output_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.forget_bias_init = forget_bias_init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        with torch.no_grad():
            h = self.hidden_size
            self.bias[h : 2 * h].fill_(self.forget_bias_init)

    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device)
        return zeros, zeros.clone()

    def _cell(self, gi: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = gi + F.linear(h, self.weight_hh)
        n = self.hidden_size
        i = torch.sigmoid(gates[:, :n])
        f = torch.sigmoid(gates[:, n : 2 * n])
        g = torch.tanh(gates[:, 2 * n : 3 * n])
        o = torch.sigmoid(gates[:, 3 * n :])
        c = f * c + i * g
        return o * torch.tanh(c), c

    def forward_step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], reset: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        keep = (~reset).unsqueeze(-1)
        gi = F.linear(x, self.weight_ih, self.bias)
        h, c = (s.to(gi.dtype) * keep.to(gi.dtype) for s in state)
        h, c = self._cell(gi, h, c)
        return h, (h, c)

    def forward_sequence(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], reset: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        gi = F.linear(x, self.weight_ih, self.bias)  # [B, T, 4H], all steps at once
        h0, c0 = state
        y, c = lstm_scan(gi, h0, c0, (~reset).to(gi.dtype), self.weight_hh)
        return y, (y[:, -1], c)
