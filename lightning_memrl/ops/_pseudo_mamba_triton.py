"""Triton kernels of the Pseudo-Mamba scan (imported only on CUDA when triton is installed).

Layout: `u`, `out`, `grad` are contiguous `[B, T, H]`, `keep` `[B, T]`, `h0` `[B, H]`. The grid is
(batch rows, channel blocks); each program keeps its block of the state in registers over T steps.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _tanh(x):
    # tanh(x) = 2 sigmoid(2x) - 1, portable across Triton versions (no libdevice import).
    return 2.0 / (1.0 + tl.exp(-2.0 * x)) - 1.0


@triton.jit
def _forward_kernel(u_ptr, h0_ptr, keep_ptr, out_ptr, T, H, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < H
    h = tl.load(h0_ptr + row * H + cols, mask=mask, other=0.0).to(tl.float32)
    for t in range(T):
        keep = tl.load(keep_ptr + row * T + t).to(tl.float32)
        u = tl.load(u_ptr + (row * T + t) * H + cols, mask=mask, other=0.0).to(tl.float32)
        h = _tanh(u + keep * h)
        tl.store(out_ptr + (row * T + t) * H + cols, h, mask=mask)


@triton.jit
def _backward_kernel(grad_ptr, out_ptr, keep_ptr, du_ptr, dh0_ptr, T, H, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < H
    carry = tl.zeros((BLOCK,), dtype=tl.float32)
    for i in range(T):
        t = T - 1 - i
        h = tl.load(out_ptr + (row * T + t) * H + cols, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(grad_ptr + (row * T + t) * H + cols, mask=mask, other=0.0).to(tl.float32) + carry
        d = g * (1.0 - h * h)
        tl.store(du_ptr + (row * T + t) * H + cols, d, mask=mask)
        carry = d * tl.load(keep_ptr + row * T + t).to(tl.float32)
    tl.store(dh0_ptr + row * H + cols, carry, mask=mask)


def _grid(B: int, H: int, block: int) -> tuple[int, int]:
    return (B, triton.cdiv(H, block))


def scan_forward_triton(u: torch.Tensor, h0: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Forward scan: `u [B, T, H]`, `h0 [B, H]`, `keep [B, T]` -> states `[B, T, H]`."""
    B, T, H = u.shape
    out = torch.empty_like(u)
    block = min(triton.next_power_of_2(H), 256)
    _forward_kernel[_grid(B, H, block)](u, h0, keep, out, T, H, BLOCK=block)
    return out


def scan_backward_triton(
    grad_out: torch.Tensor, out: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward scan: `(dL/du [B, T, H], dL/dh0 [B, H])` from `grad_out`, the saved states and `keep`."""
    B, T, H = out.shape
    d_u = torch.empty_like(out)
    d_h0 = out.new_empty(B, H)
    block = min(triton.next_power_of_2(H), 256)
    _backward_kernel[_grid(B, H, block)](grad_out, out, keep, d_u, d_h0, T, H, BLOCK=block)
    return d_u, d_h0
