"""The Pseudo-Mamba scan `h_t = tanh(u_t + keep_t * h_{t-1})`: reference, CPU fast path and Triton kernel.

`u_t = W_in x_t + b` is computed for all steps at once by the controller; this scan is the only
sequential part. Three implementations of the same function:

- `pseudo_mamba_scan_reference`: plain autograd over a Python loop (the reference);
- a hand-differentiated loop (`_PseudoMambaScan`): the backward is one elementwise pass per step,
  `du_t = (dy_t + keep_{t+1} du_{t+1}) * (1 - h_t^2)`, instead of autograd's per-op bookkeeping;
- on CUDA, when triton is importable, fused forward and backward kernels
  (`ops._pseudo_mamba_triton`): one program per (batch row, channel block) walks the time axis
  with the state in registers.
"""

from __future__ import annotations

import torch

from lightning_memrl.ops.kernel_choice import KernelChoice, choose_kernel
from lightning_memrl.ops.triton_support import triton_available


def pseudo_mamba_scan_reference(u: torch.Tensor, h0: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """`h_t = tanh(u_t + keep_t h_{t-1})` with plain autograd.

    Args:
        u: `[B, T, H]` input drive `W_in x_t + b`.
        h0: `[B, H]` state before step 0.
        keep: `[B, T]` 0 where the state is zeroed before step t (episode start), else 1.

    Returns:
        `[B, T, H]` states after every step.
    """
    h = h0
    outputs = []
    for t in range(u.shape[1]):
        h = torch.tanh(u[:, t] + keep[:, t, None] * h)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


class _PseudoMambaScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, h0, keep, fused):
        if fused:
            from lightning_memrl.ops._pseudo_mamba_triton import scan_backward_triton, scan_forward_triton

            out = scan_forward_triton(u, h0, keep)
            ctx.backward_fn = scan_backward_triton
        else:
            B, T, H = u.shape
            out = u.new_empty(B, T, H)
            h = h0
            for t in range(T):
                h = torch.tanh(torch.addcmul(u[:, t], keep[:, t, None], h), out=out[:, t])
            ctx.backward_fn = _scan_backward_torch
        ctx.save_for_backward(out, keep)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        out, keep = ctx.saved_tensors
        d_u, d_h0 = ctx.backward_fn(grad_out.contiguous(), out, keep)
        return d_u, d_h0, None, None


def _scan_backward_torch(grad_out: torch.Tensor, out: torch.Tensor, keep: torch.Tensor):
    B, T, H = out.shape
    d_u = torch.empty_like(out)
    carry = grad_out.new_zeros(B, H)
    for t in range(T - 1, -1, -1):
        h = out[:, t]
        d = torch.mul(grad_out[:, t] + carry, 1 - h * h, out=d_u[:, t])
        carry = d * keep[:, t, None]
    return d_u, carry


def pseudo_mamba_scan_choice(u: torch.Tensor, fused: bool | None = None) -> KernelChoice:
    """Which scan `pseudo_mamba_scan(u, ..., fused=fused)` runs: `triton` or `eager`, and why not triton.

    Warns once per reason where the kernels were requested (`fused=True`) or are the default on a CUDA device
    and cannot run; a default on CPU is the loop without a word.
    """
    blockers = [] if u.is_cuda else [f"the inputs are on {u.device.type}"]
    blockers += [] if triton_available() else ["triton is not installed"]
    names = {"fused_name": "triton", "fallback_name": "eager"}
    return choose_kernel("Pseudo-Mamba scan", fused, blockers, **names, expected=u.is_cuda)


def pseudo_mamba_scan(u: torch.Tensor, h0: torch.Tensor, keep: torch.Tensor, fused: bool | None = None) -> torch.Tensor:
    """`h_t = tanh(u_t + keep_t h_{t-1})`, fast; same arguments as `pseudo_mamba_scan_reference`.

    Args:
        u: `[B, T, H]`.
        h0: `[B, H]`.
        keep: `[B, T]` float mask.
        fused: the Triton kernels (`True`; where they cannot run, the loop with a warning), the loop
            (`False`), or the kernels where they can run (`None`; see `pseudo_mamba_scan_choice`).
    """
    fused = pseudo_mamba_scan_choice(u, fused).fused
    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=u.device.type, enabled=False):
        return _PseudoMambaScan.apply(
            u.to(dtype).contiguous(), h0.to(dtype).contiguous(), keep.to(dtype).contiguous(), fused
        )
