"""Hybrid controllers: the Infinity Mamba-2 + attention backbone and the CyborgMind `hybrid` / `fusion` encoders."""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn

from lightning_memrl.controllers.attention import CausalSelfAttention
from lightning_memrl.controllers.base import Controller
from lightning_memrl.controllers.gru import GRU
from lightning_memrl.controllers.mamba2 import Mamba2, Mamba2Block
from lightning_memrl.controllers.stack import ResidualStack
from lightning_memrl.errors import ConfigError
from lightning_memrl.state import State


class HybridMambaAttention(ResidualStack):
    """Interleaved Mamba-2 and causal-attention layers (the Infinity Dual Hybrid backbone).

    Layer i is attention when `(i + 1) % attention_every == 0`, else Mamba-2: with the defaults
    (4 layers, every 2nd) the order is Mamba, attention, Mamba, attention. The state is the tuple of
    the layers' states (`(conv, ssm)` pairs and KV-cache dicts).

    Args:
        hidden_size: model width and output size.
        input_size: size of the inputs; defaults to `hidden_size`.
        num_layers: total layers.
        attention_every: every how many layers one is attention (1: all attention).
        d_state: Mamba-2 state size per head.
        head_dim: Mamba-2 channels per head.
        expand: Mamba-2 inner width multiple.
        chunk_size: SSD chunk length (`None`: per backend).
        backend: Mamba-2 scan backend (`auto`, `torch`, `mamba_ssm`).
        num_heads: attention heads.
        context: attention window (steps back).
        mlp_ratio: per-layer MLP width multiple (0: none).
        dt_min: smallest initial step size of the Mamba-2 layers (as in `Mamba2`).
        dt_max: largest initial step size of the Mamba-2 layers (small values remember longer at
            initialisation).
        A_init_range: range of the Mamba-2 layers' initial decay rates (as in `Mamba2`).
    """

    def __init__(
        self,
        hidden_size: int = 128,
        input_size: int | None = None,
        num_layers: int = 4,
        attention_every: int = 2,
        d_state: int = 64,
        head_dim: int = 32,
        expand: int = 2,
        chunk_size: int | None = None,
        backend: str = "auto",
        num_heads: int = 4,
        context: int = 256,
        mlp_ratio: float = 0.0,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        A_init_range: tuple[float, float] = (1.0, 16.0),
    ):
        if attention_every < 1:
            raise ConfigError(f"attention_every must be >= 1, got {attention_every}")
        layers: list[Controller] = []
        for i in range(num_layers):
            if (i + 1) % attention_every == 0:
                layers.append(CausalSelfAttention(hidden_size, num_heads, context))
            else:
                mamba = Mamba2Block(
                    hidden_size,
                    d_state,
                    expand=expand,
                    head_dim=head_dim,
                    chunk_size=chunk_size,
                    backend=backend,
                    dt_min=dt_min,
                    dt_max=dt_max,
                    A_init_range=A_init_range,
                )
                layers.append(mamba)
        super().__init__(layers, hidden_size, input_size, mlp_ratio)


class _MambaGRU(Controller):
    """Shared parts of the CyborgMind encoders: a Mamba-2 stack and a GRU, state `{"mamba", "gru"}`."""

    def __init__(self, hidden_size: int, input_size: int | None, gru_input: int, mamba_kwargs: dict):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_size = input_size or hidden_size
        self.output_size = hidden_size
        self.mamba = Mamba2(hidden_size, self.input_size, **mamba_kwargs)
        self.gru = GRU(hidden_size, input_size=gru_input)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> dict[str, State]:
        mamba = self.mamba.initial_state(batch_size, device)
        return {"mamba": mamba, "gru": self.gru.initial_state(batch_size, device)}

    @abstractmethod
    def _combine(
        self, x: torch.Tensor, state: dict[str, State], reset: torch.Tensor, step: bool
    ) -> tuple[torch.Tensor, dict[str, State]]:
        """Run both parts (one step or a sequence) and combine their outputs."""

    def forward_sequence(
        self, x: torch.Tensor, state: dict[str, State], reset: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, State]]:
        return self._combine(x, state, reset, step=False)

    def forward_step(
        self, x: torch.Tensor, state: dict[str, State], reset: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, State]]:
        return self._combine(x, state, reset, step=True)


def _mamba_kwargs(num_mamba_layers: int, d_state: int, head_dim: int, chunk_size: int | None, backend: str) -> dict:
    return {
        "num_layers": num_mamba_layers,
        "d_state": d_state,
        "head_dim": head_dim,
        "chunk_size": chunk_size,
        "backend": backend,
    }


class CyborgHybrid(_MambaGRU):
    """CyborgMind `hybrid` encoder: Mamba-2 -> GRU, plus a residual projection of the input.

    `y = GRU(Mamba2(x)) + W_res x`. State: `{"mamba": Mamba2 state, "gru": [B, H]}`.

    Args:
        hidden_size: width of both parts and of the output.
        input_size: size of the inputs; defaults to `hidden_size`.
        num_mamba_layers: Mamba-2 blocks before the GRU.
        d_state: Mamba-2 state size per head.
        head_dim: Mamba-2 channels per head.
        chunk_size: SSD chunk length (`None`: per backend).
        backend: Mamba-2 scan backend.
    """

    def __init__(
        self,
        hidden_size: int = 128,
        input_size: int | None = None,
        num_mamba_layers: int = 1,
        d_state: int = 16,
        head_dim: int = 32,
        chunk_size: int | None = None,
        backend: str = "auto",
    ):
        kwargs = _mamba_kwargs(num_mamba_layers, d_state, head_dim, chunk_size, backend)
        super().__init__(hidden_size, input_size, hidden_size, kwargs)
        self.residual = nn.Linear(self.input_size, hidden_size, bias=False)

    def _combine(self, x, state, reset, step):
        mamba_run = self.mamba.forward_step if step else self.mamba.forward_sequence
        gru_run = self.gru.forward_step if step else self.gru.forward_sequence
        m, mamba_state = mamba_run(x, state["mamba"], reset)
        g, gru_state = gru_run(m, state["gru"], reset)
        return g + self.residual(x), {"mamba": mamba_state, "gru": gru_state}


class CyborgFusion(_MambaGRU):
    """CyborgMind `fusion` encoder: Mamba-2 and GRU side by side, concatenated and projected.

    `y = W [Mamba2(x), GRU(x)]`. State: `{"mamba": Mamba2 state, "gru": [B, H]}`.

    Args:
        hidden_size: width of both parts and of the output.
        input_size: size of the inputs; defaults to `hidden_size`.
        num_mamba_layers: Mamba-2 blocks.
        d_state: Mamba-2 state size per head.
        head_dim: Mamba-2 channels per head.
        chunk_size: SSD chunk length (`None`: per backend).
        backend: Mamba-2 scan backend.
    """

    def __init__(
        self,
        hidden_size: int = 128,
        input_size: int | None = None,
        num_mamba_layers: int = 1,
        d_state: int = 16,
        head_dim: int = 32,
        chunk_size: int | None = None,
        backend: str = "auto",
    ):
        kwargs = _mamba_kwargs(num_mamba_layers, d_state, head_dim, chunk_size, backend)
        super().__init__(hidden_size, input_size, input_size or hidden_size, kwargs)
        self.fuse = nn.Linear(2 * hidden_size, hidden_size)

    def _combine(self, x, state, reset, step):
        mamba_run = self.mamba.forward_step if step else self.mamba.forward_sequence
        gru_run = self.gru.forward_step if step else self.gru.forward_sequence
        m, mamba_state = mamba_run(x, state["mamba"], reset)
        g, gru_state = gru_run(x, state["gru"], reset)
        return self.fuse(torch.cat([m, g], dim=-1)), {"mamba": mamba_state, "gru": gru_state}
