"""A residual stack of sequence mixers: the body shared by Mamba2, Transformer and the hybrid backbone.

    h = in_proj(x)
    for each layer:  h = h + mixer(norm(h));  h = h + mlp(norm(h))   (the MLP when mlp_ratio > 0)
    y = norm(h)

Each mixer is itself a `Controller` of width `hidden_size` (a Mamba-2 block, a causal attention
layer); the stack's state is the tuple of the mixers' states, one entry per layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lightning_memrl.controllers.base import Controller
from lightning_memrl.errors import ConfigError
from lightning_memrl.state import State


class ResidualStack(Controller):
    """Pre-norm residual layers of stateful mixers (each a `Controller` of width `hidden_size`).

    Args:
        mixers: the sequence mixers, one per layer, each mapping `[.., hidden_size]` to itself.
        hidden_size: width of the residual stream and of the output.
        input_size: size of the inputs; a linear projection maps them to `hidden_size` when they differ.
        mlp_ratio: width of the per-layer MLP as a multiple of `hidden_size` (0: no MLP).
    """

    def __init__(
        self, mixers: Sequence[Controller], hidden_size: int, input_size: int | None = None, mlp_ratio: float = 0.0
    ):
        super().__init__()
        if not mixers:
            raise ConfigError("a controller stack needs at least one layer (num_layers >= 1)")
        if mlp_ratio < 0:
            raise ConfigError(f"mlp_ratio must be >= 0, got {mlp_ratio}")
        self.hidden_size = hidden_size
        self.input_size = input_size or hidden_size
        self.output_size = hidden_size
        self.in_proj = nn.Identity() if self.input_size == hidden_size else nn.Linear(self.input_size, hidden_size)
        self.mixers = nn.ModuleList(mixers)
        self.mixer_norms = nn.ModuleList(nn.RMSNorm(hidden_size) for _ in mixers)
        width = int(round(mlp_ratio * hidden_size))
        self.mlps = nn.ModuleList(
            nn.Sequential(
                nn.RMSNorm(hidden_size), nn.Linear(hidden_size, width), nn.GELU(), nn.Linear(width, hidden_size)
            )
            if width > 0
            else nn.Identity()
            for _ in mixers
        )
        self.out_norm = nn.RMSNorm(hidden_size)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> tuple[State, ...]:
        return tuple(mixer.initial_state(batch_size, device) for mixer in self.mixers)

    def _run(self, x: torch.Tensor, state: tuple[State, ...], reset: torch.Tensor, step: bool):
        h = self.in_proj(x)
        new_states = []
        for mixer, norm, mlp, s in zip(self.mixers, self.mixer_norms, self.mlps, state, strict=True):
            run = mixer.forward_step if step else mixer.forward_sequence
            out, s = run(norm(h), s, reset)
            h = h + out
            if not isinstance(mlp, nn.Identity):
                h = h + mlp(h)
            new_states.append(s)
        return self.out_norm(h), tuple(new_states)

    def forward_sequence(
        self, x: torch.Tensor, state: tuple[State, ...], reset: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[State, ...]]:
        return self._run(x, state, reset, step=False)

    def forward_step(
        self, x: torch.Tensor, state: tuple[State, ...], reset: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[State, ...]]:
        return self._run(x, state, reset, step=True)
