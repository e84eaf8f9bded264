"""Causal self-attention over the episode so far, with a ring-buffer KV cache as its recurrent state.

Every step attends to itself and to at most `context` earlier steps of its own episode. The state
carries the keys and values of the last `context + 1` steps in a ring (episode time `t` in slot
`t % (context + 1)`), their validity, and the episode time of the next step, so a sequence can continue
from where the last call (or the last acting step) stopped: `forward_step` x T equals `forward_sequence`.
A step writes one slot and reads the ring as it lies (attention does not care about order), so acting
inside `write_in_place()` touches one entry per env instead of shifting the whole cache. Inside a
sequence, episode boundaries are a block mask (keys of an earlier episode are never attended).
Positions are rotary embeddings of the *episode time*, so step and sequence see the same relative
positions, whatever the call boundaries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.controllers.base import Controller
from lightning_memrl.controllers.stack import ResidualStack
from lightning_memrl.errors import ConfigError
from lightning_memrl.ops.step_attention import newest_entries_read, step_attention

AttentionState = dict[str, torch.Tensor]
"""`key`/`value [B, context + 1, heads, head_dim]` (rotary keys; episode time `t` in slot `t % (context + 1)`),
`valid [B, context + 1]` (1.0 = attendable), `time [B]` (episode time of the next step)."""


def _rotary(x: torch.Tensor, time: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotate `x [B, T, heads, head_dim]` by the angles `time [B, T] * inv_freq [head_dim / 2]`."""
    angles = time.to(inv_freq.dtype)[..., None] * inv_freq  # [B, T, head_dim / 2]
    cos, sin = angles.cos()[:, :, None].to(x.dtype), angles.sin()[:, :, None].to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(Controller):
    """Multi-head causal self-attention of width `d_model` with a ring-buffer KV cache state.

    Args:
        d_model: input and output width.
        num_heads: attention heads (`d_model` must be a multiple; head_dim must be even for rotary).
        context: how many earlier steps each step may attend to (the cache holds `context + 1` steps:
            those and the step itself).
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

    @property
    def slots(self) -> int:
        """Entries of the ring: the `context` earlier steps and the step itself."""
        return self.context + 1

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> AttentionState:
        cache = torch.zeros(batch_size, self.slots, self.num_heads, self.head_dim, device=device)
        return {
            "key": cache,
            "value": cache.clone(),
            "valid": torch.zeros(batch_size, self.slots, device=device),
            "time": torch.zeros(batch_size, device=device),
        }

    def _check_cache(self, state: AttentionState) -> None:
        if state["key"].shape[1] != self.slots:
            raise ConfigError(
                f"{type(self).__name__} with context {self.context} keeps {self.slots} cache entries, got a state with "
                f"{state['key'].shape[1]} (a state saved by another context, or by a version that kept `context` "
                "entries in time order): start from `initial_state`"
            )

    def _project(self, x: torch.Tensor, time: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim)).unbind(-3)
        return _rotary(q, time, self.inv_freq), _rotary(k, time, self.inv_freq), v

    def forward_step(
        self, x: torch.Tensor, state: AttentionState, reset: torch.Tensor
    ) -> tuple[torch.Tensor, AttentionState]:
        self._check_cache(state)
        keep = (~reset).to(state["valid"].dtype)
        time = state["time"] * keep
        slot = (time.long() % self.slots)[:, None]  # [B, 1]: the oldest entry's slot, or 0 after a reset
        q, k, v = self._project(x[:, None], time[:, None])  # [B, 1, heads, head_dim]
        keys, values = self._write(state["key"], slot, k), self._write(state["value"], slot, v)
        valid = (state["valid"] * keep[:, None]).scatter(1, slot, 1.0)
        # One query per head over the ring: on CUDA a kernel that stops at each row's last valid slot (the ring
        # fills from slot 0 after a reset), so a short episode reads few entries of a long cache.
        out = step_attention(q[:, 0] * self.head_dim**-0.5, keys, values, valid > 0.5)  # [B, heads, head_dim]
        y = self.out_proj(out.reshape(x.shape[0], -1))
        return y, {"key": keys, "value": values, "valid": valid, "time": time + 1}

    def _write(self, cache: torch.Tensor, slot: torch.Tensor, entry: torch.Tensor) -> torch.Tensor:
        """`cache [B, S, heads, head_dim]` with `entry [B, 1, heads, head_dim]` at `slot [B, 1]`: a copy, or the cache
        itself inside `write_in_place()`."""
        out = cache if self.in_place else cache.clone()
        return out.scatter_(1, slot[..., None, None].expand(-1, -1, *cache.shape[2:]), entry.to(out.dtype))

    def forward_sequence(
        self, x: torch.Tensor, state: AttentionState, reset: torch.Tensor
    ) -> tuple[torch.Tensor, AttentionState | None]:
        self._check_cache(state)
        B, T, _ = x.shape
        W, S = self.context, self.slots
        steps = torch.arange(T, device=x.device)
        seg = reset.to(torch.int64).cumsum(dim=1)  # episode id inside the call; the cache is episode 0
        last_reset = torch.cummax(torch.where(reset, steps, -1), dim=1).values
        time = torch.where(last_reset >= 0, steps - last_reset, state["time"][:, None] + steps)  # [B, T]
        q, k, v = self._project(x, time)
        # The R newest carried entries in time order (R .. 1 steps back), then this call's: query t sits at R + t.
        carried, carried_valid = self._carried(state, reset)  # [B, R] each
        R = carried.shape[1]
        keys = torch.cat([_gather_slots(state["key"], carried), k], dim=1)  # [B, R+T, heads, head_dim]
        values = torch.cat([_gather_slots(state["value"], carried), v], dim=1)
        key_seg = torch.cat([seg.new_zeros(B, R), seg], dim=1)  # [B, R+T]
        key_valid = torch.cat([carried_valid, reset.new_ones(B, T)], dim=1)
        outputs = []
        for t0 in range(0, T, self.query_block):
            t1 = min(T, t0 + self.query_block)
            # Query t may see key index j in [R + t - W, R + t] (W earlier steps and itself) of its own episode.
            lo, hi = max(0, t0 + R - W), R + t1
            j = torch.arange(lo, hi, device=x.device)
            tq = steps[t0:t1, None]
            window = (j >= tq + R - W) & (j <= tq + R)  # [Tq, hi - lo]
            same = key_seg[:, None, lo:hi] == seg[:, t0:t1, None]  # [B, Tq, hi - lo]
            mask = window & same & key_valid[:, None, lo:hi]
            out = F.scaled_dot_product_attention(
                q[:, t0:t1].transpose(1, 2),
                keys[:, lo:hi].transpose(1, 2),
                values[:, lo:hi].transpose(1, 2),
                attn_mask=mask[:, None],
            )
            outputs.append(out.transpose(1, 2))
        y = self.out_proj(torch.cat(outputs, dim=1).reshape(B, T, -1))
        if self.final_state_discarded:
            return y, None

        # The ring as the steps leave it: each slot holds its last writer of this call (of any episode), else what
        # it held; valid are the slots written in the last episode, and the carried valid ones not overwritten
        # when the call had no reset.
        writes = (time.long() % S)[:, :, None] == torch.arange(S, device=x.device)  # [B, T, S]
        writer = torch.where(writes, steps[None, :, None], -1).amax(1)  # [B, S]
        written = writer >= 0
        written_in_last = (writes & (seg == seg[:, -1:])[:, :, None]).any(1)
        kept = (seg[:, -1] == 0)[:, None] & ~written & (state["valid"] > 0.5)
        index = writer.clamp_min(0)
        new_state = {
            "key": torch.where(written[..., None, None], _gather_slots(k, index), state["key"]),
            "value": torch.where(written[..., None, None], _gather_slots(v, index), state["value"]),
            "valid": (written_in_last | kept).to(state["valid"].dtype),
            "time": time[:, -1] + 1,
        }
        return y, new_state

    def _carried(self, state: AttentionState, reset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The slots of the carried entries a sequence reads, oldest first, and their validity, `[B, R]` each: back
        to the oldest valid entry of a row whose first step continues its episode (query 0 sees every valid one of
        its episode, no query sees an older one), as `newest_entries_read` rounds it."""
        back = torch.arange(1, self.context + 1, device=reset.device)  # newest first: index r is r + 1 steps back
        slots = (state["time"].long()[:, None] - back) % self.slots  # [B, W]
        valid = state["valid"].gather(1, slots) > 0.5
        read = newest_entries_read(valid & ~reset[:, :1], self.context)
        return slots[:, :read].flip(1), valid[:, :read].flip(1)


def _gather_slots(cache: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`cache [B, S, heads, head_dim]` at `index [B, M]` -> `[B, M, heads, head_dim]`."""
    return cache.gather(1, index[..., None, None].expand(-1, -1, *cache.shape[2:]))


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
