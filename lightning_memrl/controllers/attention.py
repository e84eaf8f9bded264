"""Causal self-attention over the episode so far, with a sliding-window KV cache as its recurrent state.

Every step attends to itself and to at most `context` earlier steps of its own episode. The state
carries the last `context` keys and values, their validity, and the episode time of the next step,
so a sequence can continue from where the last call (or the last acting step) stopped:
`forward_step` x T equals `forward_sequence`. Inside a sequence, episode boundaries are a block mask
(keys of an earlier episode are never attended). Positions are rotary embeddings of the *episode
time*, so step and sequence see the same relative positions, whatever the call boundaries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.controllers.base import Controller
from lightning_memrl.controllers.stack import ResidualStack
from lightning_memrl.errors import ConfigError

AttentionState = dict[str, torch.Tensor]
"""`key`/`value [B, context, heads, head_dim]` (rotary keys), `valid [B, context]` (1.0 = attendable),
`time [B]` (episode time of the next step)."""


def _rotary(x: torch.Tensor, time: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotate `x [B, T, heads, head_dim]` by the angles `time [B, T] * inv_freq [head_dim / 2]`."""
    angles = time.to(inv_freq.dtype)[..., None] * inv_freq  # [B, T, head_dim / 2]
    cos, sin = angles.cos()[:, :, None].to(x.dtype), angles.sin()[:, :, None].to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(Controller):
    """Multi-head causal self-attention of width `d_model` with a sliding-window KV cache state.

    Args:
        d_model: input and output width.
        num_heads: attention heads (`d_model` must be a multiple; head_dim must be even for rotary).
        context: how many earlier steps each step may attend to (the cache length).
        rope_base: rotary frequency base; larger bases resolve longer distances.
        query_block: queries processed per block in `forward_sequence`, bounding the mask memory
            at `[B, heads, query_block, context + query_block]`.
    """

    def __init__(
        self, d_model: int, num_heads: int = 4, context: int = 256, rope_base: float = 10000.0, query_block: int = 256
    ):
        super().__init__()
        if d_model % num_heads or (d_model // num_heads) % 2:
            raise ConfigError(f"d_model ({d_model}) must split into num_heads ({num_heads}) heads of even size")
        if context < 1 or query_block < 1:
            raise ConfigError(f"context and query_block must be >= 1, got {context} and {query_block}")
        self.input_size = self.output_size = d_model
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.context, self.query_block = context, query_block
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        inv_freq = rope_base ** (-torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> AttentionState:
        cache = torch.zeros(batch_size, self.context, self.num_heads, self.head_dim, device=device)
        return {
            "key": cache,
            "value": cache.clone(),
            "valid": torch.zeros(batch_size, self.context, device=device),
            "time": torch.zeros(batch_size, device=device),
        }

    def _project(self, x: torch.Tensor, time: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim)).unbind(-3)
        return _rotary(q, time, self.inv_freq), _rotary(k, time, self.inv_freq), v

    def forward_step(
        self, x: torch.Tensor, state: AttentionState, reset: torch.Tensor
    ) -> tuple[torch.Tensor, AttentionState]:
        keep = (~reset).to(state["valid"].dtype)
        time = state["time"] * keep
        valid = torch.cat([state["valid"] * keep[:, None], keep.new_ones(x.shape[0], 1)], dim=1)  # [B, W+1]
        q, k, v = self._project(x[:, None], time[:, None])  # [B, 1, heads, head_dim]
        keys = torch.cat([state["key"], k], dim=1)
        values = torch.cat([state["value"], v], dim=1)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2), attn_mask=valid[:, None, None, :] > 0.5
        )
        y = self.out_proj(out.reshape(x.shape[0], -1))
        return y, {"key": keys[:, 1:], "value": values[:, 1:], "valid": valid[:, 1:], "time": time + 1}

    def forward_sequence(
        self, x: torch.Tensor, state: AttentionState, reset: torch.Tensor
    ) -> tuple[torch.Tensor, AttentionState]:
        B, T, _ = x.shape
        W = self.context
        steps = torch.arange(T, device=x.device)
        seg = reset.to(torch.int64).cumsum(dim=1)  # episode id inside the call; the cache is episode 0
        last_reset = torch.cummax(torch.where(reset, steps, -1), dim=1).values
        time = torch.where(last_reset >= 0, steps - last_reset, state["time"][:, None] + steps)  # [B, T]
        q, k, v = self._project(x, time)
        keys = torch.cat([state["key"], k], dim=1)  # [B, W+T, heads, head_dim]; query t sits at index W+t
        values = torch.cat([state["value"], v], dim=1)
        key_seg = torch.cat([seg.new_zeros(B, W), seg], dim=1)  # [B, W+T]
        key_valid = torch.cat([state["valid"] > 0.5, reset.new_ones(B, T)], dim=1)
        outputs = []
        for t0 in range(0, T, self.query_block):
            t1 = min(T, t0 + self.query_block)
            # Query t may see key index j in [t, W + t] (itself and W earlier steps) of its own episode.
            j = torch.arange(t0, W + t1, device=x.device)
            tq = steps[t0:t1, None]
            window = (j >= tq) & (j <= tq + W)  # [Tq, S]
            same = key_seg[:, None, t0 : W + t1] == seg[:, t0:t1, None]  # [B, Tq, S]
            mask = window & same & key_valid[:, None, t0 : W + t1]
            out = F.scaled_dot_product_attention(
                q[:, t0:t1].transpose(1, 2),
                keys[:, t0 : W + t1].transpose(1, 2),
                values[:, t0 : W + t1].transpose(1, 2),
                attn_mask=mask[:, None],
            )
            outputs.append(out.transpose(1, 2))
        y = self.out_proj(torch.cat(outputs, dim=1).reshape(B, T, -1))
        valid = (key_valid & (key_seg == seg[:, -1:]))[:, -W:].to(state["valid"].dtype)
        new_state = {"key": keys[:, -W:], "value": values[:, -W:], "valid": valid, "time": time[:, -1] + 1}
        return y, new_state


class Transformer(ResidualStack):
    """A causal Transformer over the episode so far (pre-norm attention + MLP layers, rotary positions).

    The state is a tuple with one KV cache per layer (see `CausalSelfAttention`).
    `--model.controller.class_path lightning_memrl.controllers.Transformer`.

    Args:
        hidden_size: model width and output size.
        input_size: size of the inputs; defaults to `hidden_size` (else a linear input projection).
        num_layers: attention layers.
        num_heads: heads per layer.
        context: steps each step may attend back (sliding window; set >= the memory horizon).
        mlp_ratio: MLP width as a multiple of `hidden_size` (0: attention only).
        rope_base: rotary frequency base.
        query_block: query block length of `forward_sequence` (memory bound).
    """

    def __init__(
        self,
        hidden_size: int = 128,
        input_size: int | None = None,
        num_layers: int = 2,
        num_heads: int = 4,
        context: int = 256,
        mlp_ratio: float = 4.0,
        rope_base: float = 10000.0,
        query_block: int = 256,
    ):
        layers = [
            CausalSelfAttention(hidden_size, num_heads, context, rope_base, query_block) for _ in range(num_layers)
        ]
        super().__init__(layers, hidden_size, input_size, mlp_ratio)
