"""A GRU scan over a sequence with in-sequence resets, with a hand-written backward.

Autograd through a Python loop of GRU cells records ~20 small ops per step, and on CPU their
bookkeeping, not the arithmetic, dominates the backward pass (measured: 88 of 109 ms for
B=64, T=128, H=128 on 2 cores). This function runs the same recurrence with the gradients
derived by hand: an elementwise pass per step plus one matrix product, and the weight gradients of
all steps in a single product at the end (about 7x faster end to end there).

On CUDA, when triton is importable and the hidden size fits, the two loops run as one Triton
kernel each (`ops._gru_triton`): the eager loop is launch-bound on a GPU.

The reference is `gru_scan_reference` (plain autograd); the two are tested equal, values and
gradients, in `tests/ops/test_gru_scan.py` (the Triton kernels on the GPU machine).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lightning_memrl.ops.kernel_choice import KernelChoice, choose_kernel
from lightning_memrl.ops.per_step import per_step
from lightning_memrl.ops.triton_support import triton_available


def gru_scan_reference(
    gi: torch.Tensor, h0: torch.Tensor, keep: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor
) -> torch.Tensor:
    """GRU recurrence (torch.nn.GRU gate order r, z, n) with plain autograd.

    Args:
        gi: `[B, T, 3H]` input projections `W_ih x_t + b_ih`.
        h0: `[B, H]` state before step 0.
        keep: `[B, T]` 0 where the state is zeroed before step t (episode start), else 1.
        weight_hh: `[3H, H]`.
        bias_hh: `[3H]`.

    Returns:
        `[B, T, H]` hidden states after every step.
    """
    hidden = h0.shape[-1]
    h = h0
    outputs = []
    for t in range(gi.shape[1]):
        h = h * keep[:, t, None]
        gh = F.linear(h, weight_hh, bias_hh)
        rz = torch.sigmoid(gi[:, t, : 2 * hidden] + gh[:, : 2 * hidden])
        r, z = rz[:, :hidden], rz[:, hidden:]
        n = torch.tanh(gi[:, t, 2 * hidden :] + r * gh[:, 2 * hidden :])
        h = n + z * (h - n)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


# The Triton path is the default where it can run: equal to the eager scan on an H100 (tests/ops/test_gru_scan.py)
# and 4.2x the end-to-end PPO throughput at 4,096 envs there (README "Throughput"); where it cannot run (or its
# kernels fail to compile) the eager scan runs, with a warning when the kernels were asked for or expected.
FUSED_BY_DEFAULT = True
_compile_errors: dict[int, str | None] = {}


def _compile_error(hidden: int, device: torch.device) -> str | None:
    """None if the Triton kernels compile and run for this hidden size, else the error (tried once per size)."""
    if hidden not in _compile_errors:
        try:
            from lightning_memrl.ops._gru_triton import scan_backward, scan_forward

            cuda = {"device": device}
            keep = torch.ones(2, 16, **cuda)
            weight = torch.zeros(3 * hidden, hidden, **cuda)
            saved = scan_forward(torch.zeros(2, 16, 3 * hidden, **cuda), torch.zeros(16, hidden, **cuda), keep, weight,
                                 torch.zeros(3 * hidden, **cuda))  # fmt: skip
            scan_backward(torch.zeros_like(saved[0]), keep, weight, *saved[1:])
            _compile_errors[hidden] = None
        except Exception as err:  # a Triton compile or resource error: the eager scan computes the same
            _compile_errors[hidden] = f"the kernels failed to compile: {err!r:.300}"
    return _compile_errors[hidden]


def gru_scan_choice(gi: torch.Tensor, h0: torch.Tensor, fused: bool | None = None) -> KernelChoice:
    """Which scan `gru_scan(gi, h0, ..., fused=fused)` runs: `triton` or `eager`, and why not triton.

    Warns once per reason where the Triton kernels were requested (`fused=True`) or are the default on a
    CUDA device and cannot run; a default on CPU is the eager scan without a word.
    """
    blockers = []
    if not gi.is_cuda:
        blockers.append(f"the inputs are on {gi.device.type}")
    if gi.dtype == torch.float64:
        blockers.append("the inputs are float64")
    if not triton_available():
        blockers.append("triton is not installed")
    if not _fits(h0.shape[-1]):
        blockers.append(f"hidden size {h0.shape[-1]} is not a power of two from 16 to 128")
    if not blockers and fused is not False and (fused or FUSED_BY_DEFAULT):
        error = _compile_error(h0.shape[-1], gi.device)
        blockers += [error] if error else []
    if fused is None and not FUSED_BY_DEFAULT:
        return KernelChoice(False, "eager", "triton is off by default")
    return choose_kernel("GRU scan", fused, blockers, fused_name="triton", fallback_name="eager", expected=gi.is_cuda)


class _GRUScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gi, h0, keep, weight_hh, bias_hh, fused):
        B, T, three_h = gi.shape
        H = three_h // 3
        gi_t = gi.transpose(0, 1).contiguous()  # [T, B, 3H]
        keep_t = keep.transpose(0, 1).unsqueeze(-1).contiguous()  # [T, B, 1]
        ctx.fused = fused
        if ctx.fused:
            from lightning_memrl.ops._gru_triton import scan_forward

            out, prev, rz, n, gh_n = scan_forward(gi_t, h0, keep_t, weight_hh, bias_hh)
            ctx.save_for_backward(keep_t, weight_hh, prev, rz, n, gh_n)
            return out.transpose(0, 1)
        w_rz, w_n = weight_hh[: 2 * H].t(), weight_hh[2 * H :].t()
        b_rz, b_n = bias_hh[: 2 * H], bias_hh[2 * H :]
        gi_rz = gi_t[..., : 2 * H] + b_rz  # the r and z biases of every step at once, rows contiguous for addmm
        prev = gi.new_empty(T, B, H)  # masked previous state of each step
        rz = gi.new_empty(T, B, 2 * H)
        n = gi.new_empty(T, B, H)
        gh_n = gi.new_empty(T, B, H)
        out = gi.new_empty(T, B, H)
        steps = per_step(prev, keep_t, gi_rz, rz, rz[..., :H], rz[..., H:], gh_n, gi_t[..., 2 * H :], n, out)
        h = h0
        for hp, keep, gi_rz_t, rz_t, r_t, z_t, gh_n_t, gi_n_t, n_t, out_t in steps:
            torch.mul(h, keep, out=hp)
            torch.sigmoid(torch.addmm(gi_rz_t, hp, w_rz, out=rz_t), out=rz_t)
            torch.addmm(b_n, hp, w_n, out=gh_n_t)
            torch.tanh(torch.addcmul(gi_n_t, r_t, gh_n_t), out=n_t)
            h = torch.lerp(n_t, hp, z_t, out=out_t)  # n + z (hp - n)
        ctx.save_for_backward(keep_t, weight_hh, prev, rz, n, gh_n)
        return out.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_out):
        keep_t, weight_hh, prev, rz, n, gh_n = ctx.saved_tensors
        T, B, H = prev.shape
        grad_t = grad_out.transpose(0, 1).contiguous()
        if ctx.fused:
            from lightning_memrl.ops._gru_triton import scan_backward

            d_gi, d_gh, d_h0 = scan_backward(grad_t, keep_t, weight_hh, prev, rz, n, gh_n)
            d_gh = d_gh.reshape(T * B, 3 * H)
            d_weight = d_gh.t() @ prev.reshape(T * B, H)
            return d_gi.transpose(0, 1), d_h0, None, d_weight, d_gh.sum(0), None
        # The factors of each step's gate gradients that do not depend on the incoming gradient, for all steps
        # at once: the loop below is then a few products per step (its cost on a CPU is the number of ops).
        r, z = rz[..., :H], rz[..., H:]
        a_n = (1 - z) * (1 - n * n)  # d_an = g * a_n
        a_r = gh_n * r * (1 - r)  # d_ar = d_an * a_r
        a_z = (prev - n) * z * (1 - z)  # d_az = g * a_z
        # [d_ar, d_az, d_ghn]: the gradients of W_hh h + b_hh, whose rows go to one addmm per step (contiguous),
        # and whose first two thirds are also those of the r and z pre-activations
        d_gh = prev.new_empty(T, B, 3 * H)
        d_an = torch.empty_like(prev)  # gradient of the n pre-activation
        carry = torch.zeros_like(prev[0])
        d_ar, d_az, d_ghn = d_gh[..., :H], d_gh[..., H : 2 * H], d_gh[..., 2 * H :]
        steps = per_step(grad_t, a_n, d_an, r, a_r, a_z, z, keep_t, d_gh, d_ar, d_az, d_ghn)
        for grad, a_n_t, d_an_t, r_t, a_r_t, a_z_t, z_t, keep, d_gh_t, d_ar_t, d_az_t, d_ghn_t in reversed(steps):
            g = grad + carry
            torch.mul(g, a_n_t, out=d_an_t)
            torch.mul(d_an_t, r_t, out=d_ghn_t)
            torch.mul(d_an_t, a_r_t, out=d_ar_t)
            torch.mul(g, a_z_t, out=d_az_t)
            carry = torch.addmm(g * z_t, d_gh_t, weight_hh).mul_(keep)
        d_gh_2d = d_gh.reshape(T * B, 3 * H)
        d_weight = d_gh_2d.t() @ prev.reshape(T * B, H)
        d_gi = torch.cat([d_gh[..., : 2 * H], d_an], -1)
        return d_gi.transpose(0, 1), carry, None, d_weight, d_gh_2d.sum(0), None


def gru_scan(
    gi: torch.Tensor,
    h0: torch.Tensor,
    keep: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor,
    fused: bool | None = None,
) -> torch.Tensor:
    """GRU recurrence with resets, hand-differentiated; same arguments as `gru_scan_reference`.

    Runs in float32 (or the inputs' float64) whatever the autocast context; no double backward.
    `fused` selects the Triton kernels (CUDA, float32, hidden size a power of two from 16 to 128; where they
    cannot run the eager scan runs, see `gru_scan_choice`), `False` the eager scan; `None` picks the kernels
    where they can run when `FUSED_BY_DEFAULT` is set.
    """
    dtype = torch.float64 if gi.dtype == torch.float64 else torch.float32
    fused = gru_scan_choice(gi, h0, fused).fused
    with torch.autocast(device_type=gi.device.type, enabled=False):
        args = (gi.to(dtype), h0.to(dtype), keep.to(dtype), weight_hh.to(dtype), bias_hh.to(dtype))
        return _GRUScan.apply(*args, fused)


def _fits(hidden: int) -> bool:
    """Whether the kernels' tiles take this hidden size: a power of two from 16 to 128."""
    return 16 <= hidden <= 128 and hidden & (hidden - 1) == 0
