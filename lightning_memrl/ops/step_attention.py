"""One acting step's attention read over a per-row buffer of entries: reference and a Triton kernel.

A memory's or a KV cache's step reads `N` stored entries per row with one query per head. The reference
reads every slot (one fused attention call over the whole buffer: at 4,096 rows and 1,024 slots that is
2 GB of keys and values per step). The buffers these reads serve fill from slot 0 after every reset (a
circular memory restarts its pointer there, the Transformer's ring puts episode time `t` at `t % slots`),
so a row's visible entries lie below its last visible slot, which is usually far below `N`: the Triton
kernel (`ops._step_attention_triton`, one program per row and head, an online softmax over blocks of slots)
stops there. Its result is the same up to float rounding; without a gradient only (acting, evaluation).
`newest_entries_read` is the same bound for a sequence read over such a ring (training), as one length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lightning_memrl.ops.kernel_choice import KernelChoice, choose_kernel
from lightning_memrl.ops.triton_support import triton_available


def hidden_floor(dtype: torch.dtype) -> float:
    """The additive logit that hides an entry: far below any score, yet finite after the kernels' own
    scaling (no -inf, so a row that hides everything softmaxes to a uniform row, never NaN)."""
    return -min(1e9, torch.finfo(dtype).max / 4)


def newest_entries_read(seen: torch.Tensor, limit: int) -> int:
    """How many of a ring's newest entries a sequence read covers: `seen [..., N]` marks (at index `r`) the
    entries `r + 1` steps back that some step sees; -> the count back to the oldest seen one, rounded up to a
    multiple of 16 (aligned rows for the fused attention kernels, fewer distinct shapes), at most `limit`.
    One host sync (training and burn-in, never in acting)."""
    if not seen.numel():
        return 0
    steps_back = torch.arange(1, seen.shape[-1] + 1, device=seen.device)
    return min(limit, -(-int((seen * steps_back).max()) // 16) * 16)


def slot_age_logits(age_logits: torch.Tensor, pointer: torch.Tensor) -> torch.Tensor:
    """The age logit of every slot of a ring read before the write at `pointer [B]`: `age_logits [nh, N]` holds
    the logit of age `a` (the entry written `a` steps ago) at index `a - 1`; -> `[B, nh, 1, N]`."""
    slots = torch.arange(age_logits.shape[1], device=pointer.device)
    rank = (pointer[:, None] - 1 - slots) % age_logits.shape[1]  # [B, N]: writes since the slot's entry (0: newest)
    return age_logits[:, rank].transpose(0, 1).unsqueeze(2)


def step_attention_reference(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    visible: torch.Tensor,
    age_logits: torch.Tensor | None = None,
    pointer: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax attention of one query per head over every slot (one fused attention call, what is hidden under a
    finite floor: a row that sees nothing reads a uniform row, zeroed); see `step_attention` for the arguments."""
    bias = torch.zeros((), dtype=query.dtype, device=query.device)
    if age_logits is not None:
        bias = slot_age_logits(age_logits, pointer).to(query.dtype)
    bias = torch.where(visible[:, None, None, :], bias, hidden_floor(query.dtype))  # [B, nh, 1, N]
    read = F.scaled_dot_product_attention(
        query[:, :, None], keys.transpose(1, 2), values.transpose(1, 2), attn_mask=bias, scale=1.0
    )[:, :, 0]
    return read * visible.any(-1)[:, None, None]


def step_attention_choice(query: torch.Tensor, keys: torch.Tensor, fused: bool | None = None) -> KernelChoice:
    """Which read `step_attention` runs: `triton` or `eager`, and why not triton.

    Warns once per reason where the kernel was requested (`fused=True`) or is the default on a CUDA device and
    cannot run; a default on CPU is the eager read without a word.
    """
    blockers = [] if query.is_cuda else [f"the inputs are on {query.device.type}"]
    blockers += [] if triton_available() else ["triton is not installed"]
    if torch.is_grad_enabled() and (query.requires_grad or keys.requires_grad):
        blockers.append("a gradient is needed (the kernel has no backward)")
    names = {"fused_name": "triton", "fallback_name": "eager"}
    return choose_kernel("step attention", fused, blockers, **names, expected=query.is_cuda)


def step_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    visible: torch.Tensor,
    age_logits: torch.Tensor | None = None,
    pointer: torch.Tensor | None = None,
    fused: bool | None = None,
) -> torch.Tensor:
    """One step's read: softmax over the visible slots of `query . key (+ the slot's age logit)`, times the values.

    Args:
        query: `[B, nh, d]` per-head queries, scale included.
        keys: `[B, N, nh, d]` stored keys.
        values: `[B, N, nh, dv]` stored values.
        visible: `[B, N]` bool, the slots the read may see; a row that sees none reads zeros.
        age_logits: `[nh, N]`, the logit of age `a` at index `a - 1` (optional), with
        pointer: `[B]` long, the slot the next write goes to (the newest entry sits just before it).
        fused: the Triton kernel (`True`; where it cannot run, eager with a warning), eager (`False`), or the
            kernel where it can run (`None`; see `step_attention_choice`).

    Returns:
        `[B, nh, dv]` attended values.
    """
    if not step_attention_choice(query, keys, fused).fused:
        return step_attention_reference(query, keys, values, visible, age_logits, pointer)
    from lightning_memrl.ops._step_attention_triton import step_attention_triton

    return step_attention_triton(query, keys, values, visible, age_logits, pointer)
