"""Depthwise causal convolution over `[batch, time, channels]` with a hand-written backward.

`F.conv1d` wants `[batch, channels, time]`: on CPU the transposes around it, and the strided
SiLU after it, cost more than the convolution of a short kernel itself. Here each of the `K` taps
is one fused multiply-add over contiguous `[B, T, C]` memory, forward and backward.
"""

from __future__ import annotations

import torch


class _DepthwiseCausalConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, padded: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        K = weight.shape[-1]
        T = padded.shape[1] - K + 1
        taps = weight[:, 0].t().to(padded.dtype).contiguous()  # [K, C]
        out = torch.addcmul(bias.to(padded.dtype), padded[:, :T], taps[0])
        for k in range(1, K):
            out.addcmul_(padded[:, k : k + T], taps[k])
        ctx.save_for_backward(padded, taps)
        ctx.dtypes = (weight.dtype, bias.dtype)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        padded, taps = ctx.saved_tensors
        K, T = taps.shape[0], grad.shape[1]
        grad = grad.contiguous()
        grad_padded = torch.zeros_like(padded)
        grad_taps = torch.empty_like(taps)
        for k in range(K):
            grad_padded[:, k : k + T].addcmul_(grad, taps[k])
            grad_taps[k] = (grad * padded[:, k : k + T]).sum((0, 1))
        weight_dtype, bias_dtype = ctx.dtypes
        return grad_padded, grad_taps.t().unsqueeze(1).to(weight_dtype), grad.sum((0, 1)).to(bias_dtype)


def depthwise_causal_conv(padded: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """`out[b, t, c] = bias[c] + sum_k weight[c, 0, k] * padded[b, t + k, c]`: `nn.Conv1d(groups=C)`'s math.

    Args:
        padded: `[B, K - 1 + T, C]` inputs, the `K - 1` steps before the first output first.
        weight: `[C, 1, K]` the depthwise `nn.Conv1d` weight.
        bias: `[C]`.

    Returns:
        `[B, T, C]` (contiguous).
    """
    return _DepthwiseCausalConv.apply(padded, weight, bias)
