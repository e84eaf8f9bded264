"""RMSNorm, optionally gated by SiLU, with a hand-written backward (for the CPU).

    u = x * silu(z)   (or u = x without a gate)        out = u / sqrt(mean(u^2) + eps) * weight

Autograd's backward of this expression is about ten passes over `[.., D]` tensors plus the
temporaries between them; on CPU, where each pass is memory-bound, the hand-written one below
makes about half as many and keeps only `x`, `z` and one scale per row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, z: torch.Tensor | None, weight: torch.Tensor, eps: float) -> torch.Tensor:
        u = x * F.silu(z) if z is not None else x
        rstd = torch.rsqrt(u.square().mean(-1, keepdim=True) + eps)  # [.., 1]
        ctx.save_for_backward(x, z, weight, rstd)
        return u * rstd * weight

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, z, weight, rstd = ctx.saved_tensors
        gate = F.silu(z) if z is not None else None
        u = x * gate if gate is not None else x
        grad_scaled = grad * weight  # d loss / d (u * rstd)
        # d/du of u * rstd: rstd * (g - u * rstd^2 * mean(g * u)).
        proj = (grad_scaled * u).mean(-1, keepdim=True) * rstd.square()
        grad_u = torch.addcmul(grad_scaled, u, proj, value=-1).mul_(rstd)
        grad_weight = None
        if ctx.needs_input_grad[2]:
            grad_weight = ((grad * u).reshape(-1, u.shape[-1]).t() @ rstd.reshape(-1)).to(weight.dtype)
        if gate is None:
            return grad_u, None, grad_weight, None
        grad_z = torch.ops.aten.silu_backward(grad_u * x, z)
        return grad_u.mul_(gate), grad_z, grad_weight, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, gate: torch.Tensor | None = None) -> torch.Tensor:
    """`nn.RMSNorm(D, eps)(x * silu(gate))` (or of `x` when `gate` is None), with a cheaper backward.

    Args:
        x: `[.., D]` input.
        weight: `[D]` scale (an `nn.RMSNorm`'s weight).
        eps: added to the mean square.
        gate: `[.., D]` SiLU gate, or None.

    Returns:
        `[.., D]`, same dtype as `x`.
    """
    return _RMSNorm.apply(x, gate, weight, eps)
