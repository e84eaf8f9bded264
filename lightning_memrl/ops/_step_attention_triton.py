"""Triton kernel of one step's attention read (imported only on CUDA when triton is installed).

Layout: `query [B, nh, d]`, `keys [B, N, nh, d]`, `values [B, N, nh, dv]` (each row's `[nh, d]` contiguous),
`visible [B, N]` bool, `age [nh, N]` float, `pointer [B]` long. The grid is (rows, heads); each program reads
its row's slots from 0 up to the last visible one in blocks, with an online softmax in float32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_BLOCK_SLOTS = 32


@triton.jit
def _step_attention_kernel(
    q_ptr, k_ptr, v_ptr, visible_ptr, limit_ptr, age_ptr, pointer_ptr, out_ptr,
    N, NH, stride_kb, stride_kn, stride_vb, stride_vn,
    D: tl.constexpr, DV: tl.constexpr, D_PAD: tl.constexpr, DV_PAD: tl.constexpr, BLOCK: tl.constexpr,
    HAS_AGE: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    head = tl.program_id(1)
    d = tl.arange(0, D_PAD)  # head sizes padded to a power of two, the padding masked
    dv = tl.arange(0, DV_PAD)
    q = tl.load(q_ptr + (row * NH + head) * D + d, mask=d < D, other=0.0).to(tl.float32)
    limit = tl.load(limit_ptr + row)
    best = -1e30  # running max of the visible logits (a finite floor: no inf - inf)
    total = 0.0
    acc = tl.zeros((DV_PAD,), tl.float32)
    for start in range(0, limit, BLOCK):
        slots = start + tl.arange(0, BLOCK)
        seen = tl.load(visible_ptr + row * N + slots, mask=slots < limit, other=0) != 0
        k_at = k_ptr + row * stride_kb + slots[:, None] * stride_kn + head * D + d[None, :]
        k = tl.load(k_at, mask=seen[:, None] & (d[None, :] < D), other=0.0)
        logits = tl.sum(k.to(tl.float32) * q[None, :], axis=1)
        if HAS_AGE:  # the entry in `slot` was written (pointer - 1 - slot) % N + 1 steps ago
            pointer = tl.load(pointer_ptr + row)
            rank = (pointer - 1 - slots + N) % N
            logits += tl.load(age_ptr + head * N + rank, mask=seen, other=0.0).to(tl.float32)
        logits = tl.where(seen, logits, -1e30)
        new_best = tl.maximum(best, tl.max(logits, axis=0))
        weights = tl.where(seen, tl.exp(logits - new_best), 0.0)
        rescale = tl.exp(best - new_best)
        v_at = v_ptr + row * stride_vb + slots[:, None] * stride_vn + head * DV + dv[None, :]
        v = tl.load(v_at, mask=seen[:, None] & (dv[None, :] < DV), other=0.0)
        acc = acc * rescale + tl.sum(weights[:, None] * v.to(tl.float32), axis=0)
        total = total * rescale + tl.sum(weights, axis=0)
        best = new_best
    out = acc / tl.where(total > 0, total, 1.0)  # a row that saw nothing reads zeros
    tl.store(out_ptr + (row * NH + head) * DV + dv, out, mask=dv < DV)


def step_attention_triton(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    visible: torch.Tensor,
    age_logits: torch.Tensor | None,
    pointer: torch.Tensor | None,
) -> torch.Tensor:
    """`step_attention` on CUDA: each row reads its slots up to its last visible one."""
    b, n, nh, d = keys.shape
    dv = values.shape[-1]
    keys = keys if keys.stride()[2:] == (d, 1) else keys.contiguous()  # rows may be strided, not their [nh, d]
    values = values if values.stride()[2:] == (dv, 1) else values.contiguous()
    query, visible = query.contiguous(), visible.contiguous()
    # one past the last visible slot of each row (0: nothing visible)
    limit = (visible * torch.arange(1, n + 1, device=keys.device, dtype=torch.int32)).amax(1).to(torch.int32)
    out = torch.empty(b, nh, dv, device=keys.device, dtype=torch.float32)
    has_age = age_logits is not None
    age = age_logits.contiguous() if has_age else limit  # unused without ages
    pointer = pointer.contiguous() if has_age else limit
    _step_attention_kernel[(b, nh)](
        query, keys, values, visible, limit, age, pointer, out,
        n, nh, keys.stride(0), keys.stride(1), values.stride(0), values.stride(1),
        D=d, DV=dv, D_PAD=triton.next_power_of_2(d), DV_PAD=triton.next_power_of_2(dv), BLOCK=_BLOCK_SLOTS,
        HAS_AGE=has_age, num_warps=2,
    )  # fmt: skip
    return out.to(values.dtype)
