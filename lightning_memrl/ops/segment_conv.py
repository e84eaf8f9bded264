"""Mamba-2's short causal depthwise convolution + SiLU, masked at episode starts, for the GPU path.

    out[b, t, c] = silu(bias[c] + sum_k weight[c, 0, k] * x[b, t - K + 1 + k, c] * same[b, t, k])

where `same` is 1 when input `t - K + 1 + k` belongs to the same segment (episode) as step `t`; the
steps before the sequence come from the carried `conv_state` (segment 0). Written densely (each tap a
masked multiply-add) so `torch.compile` fuses forward and backward into one kernel each, with no
host synchronisation; the CPU path keeps `Mamba2Block._masked_conv`, which subtracts the few terms
that cross a reset instead (cheaper where every pass over memory counts).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F


def segment_causal_conv_silu(
    xbc: torch.Tensor, conv_state: torch.Tensor, seg: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked causal convolution and its SiLU, densely.

    Args:
        xbc: `[B, T, C]` inputs.
        conv_state: `[B, C, K - 1]` the last `K - 1` inputs before the sequence (segment 0).
        seg: `[B, T]` segment ids (`cumsum` of the resets; the carried state is segment 0).
        weight: `[C, 1, K]` the depthwise `nn.Conv1d` weight.
        bias: `[C]`.

    Returns:
        `(silu(conv) [B, T, C], conv_state after step T - 1 [B, C, K - 1])`.
    """
    K, T = weight.shape[-1], xbc.shape[1]
    padded = torch.cat([conv_state.transpose(1, 2).to(xbc.dtype), xbc], dim=1)  # [B, K-1+T, C]
    seg_padded = torch.cat([seg.new_zeros(seg.shape[0], K - 1), seg], dim=1)  # [B, K-1+T]
    taps = weight[:, 0].t().to(xbc.dtype)  # [K, C]
    out = bias.to(xbc.dtype).expand_as(xbc)
    for k in range(K):
        same = (seg_padded[:, k : k + T] == seg).unsqueeze(-1)
        out = out + torch.where(same, padded[:, k : k + T] * taps[k], 0.0)
    tail_same = (seg_padded[:, T:] == seg[:, -1:]).unsqueeze(-1)  # last K-1 inputs still in the episode
    return F.silu(out), torch.where(tail_same, padded[:, T:], 0.0).transpose(1, 2)


@cache
def _compiled() -> Callable:
    return torch.compile(segment_causal_conv_silu)  # lazy: compiles (and can fail) at its first call


_compile_failed = False


def fused_segment_causal_conv_silu(
    xbc: torch.Tensor, conv_state: torch.Tensor, seg: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`segment_causal_conv_silu` compiled by `torch.compile` (one fused kernel each way), or eager if
    compilation fails (warned once)."""
    global _compile_failed
    if not _compile_failed:
        try:
            return _compiled()(xbc, conv_state, seg, weight, bias)
        except Exception as error:  # noqa: BLE001 - a compiler failure must not stop training
            _compile_failed = True
            warnings.warn(f"torch.compile failed ({error}); Mamba2's GPU convolution runs eagerly", stacklevel=2)
    return segment_causal_conv_silu(xbc, conv_state, seg, weight, bias)
