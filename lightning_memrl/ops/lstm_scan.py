"""An LSTM scan over a sequence with in-sequence resets, with a hand-written backward.

The LSTM twin of `gru_scan`: autograd through a Python loop of LSTM cells spends its time in
per-op bookkeeping on CPU, so this function runs the same recurrence with the gradients derived by
hand (an elementwise pass and one matrix product per step, the weight gradient of all steps in one
product at the end). `lstm_scan_reference` is the plain-autograd definition; the two are tested
equal, values and gradients, in `tests/ops/test_lstm_scan.py`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lightning_memrl.ops.per_step import per_step


def lstm_scan_reference(
    gi: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, keep: torch.Tensor, weight_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM recurrence (torch.nn.LSTM gate order i, f, g, o) with plain autograd.

    Args:
        gi: `[B, T, 4H]` input projections `W_ih x_t + b` (the single bias of the cell included).
        h0: `[B, H]` hidden state before step 0.
        c0: `[B, H]` cell state before step 0.
        keep: `[B, T]` 0 where both states are zeroed before step t (episode start), else 1.
        weight_hh: `[4H, H]`.

    Returns:
        `[B, T, H]` hidden states after every step, and the cell state after the last step `[B, H]`.
    """
    hidden = h0.shape[-1]
    h, c = h0, c0
    outputs = []
    for t in range(gi.shape[1]):
        k = keep[:, t, None]
        h, c = h * k, c * k
        gates = gi[:, t] + F.linear(h, weight_hh)
        i, f, o = (torch.sigmoid(gates[:, j * hidden : (j + 1) * hidden]) for j in (0, 1, 3))
        g = torch.tanh(gates[:, 2 * hidden : 3 * hidden])
        c = f * c + i * g
        h = o * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), c


class _LSTMScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gi, h0, c0, keep, weight_hh):
        B, T, four_h = gi.shape
        H = four_h // 4
        gi_t = gi.transpose(0, 1).contiguous()  # [T, B, 4H]
        keep_t = keep.transpose(0, 1).unsqueeze(-1).contiguous()  # [T, B, 1]
        w_t = weight_hh.t()
        prev_h = gi.new_empty(T, B, H)  # masked states entering each step
        prev_c = gi.new_empty(T, B, H)
        gates = gi.new_empty(T, B, 4 * H)  # activated gates i, f, g, o
        tanh_c = gi.new_empty(T, B, H)
        out = gi.new_empty(T, B, H)
        i, f, g, o = gates.split(H, -1)
        h, c = h0, c0
        for keep, hp, cp, gi_s, act, i_s, f_s, g_s, o_s, tc, out_s in per_step(
            keep_t, prev_h, prev_c, gi_t, gates, i, f, g, o, tanh_c, out
        ):
            torch.mul(h, keep, out=hp)
            torch.mul(c, keep, out=cp)
            torch.addmm(gi_s, hp, w_t, out=act)
            torch.sigmoid_(act[:, : 2 * H])
            torch.tanh_(g_s)
            torch.sigmoid_(o_s)
            c = torch.addcmul(cp * f_s, i_s, g_s)
            torch.tanh(c, out=tc)
            h = torch.mul(o_s, tc, out=out_s)
        ctx.save_for_backward(keep_t, weight_hh, prev_h, prev_c, gates, tanh_c)
        return out.transpose(0, 1), c

    @staticmethod
    def backward(ctx, grad_out, grad_c_last):
        keep_t, weight_hh, prev_h, prev_c, gates, tanh_c = ctx.saved_tensors
        T, B, H = prev_h.shape
        grad_t = grad_out.transpose(0, 1).contiguous() if grad_out is not None else None
        d_act = torch.empty_like(gates)  # gradients of the gate pre-activations
        carry_h = torch.zeros_like(prev_h[0])
        carry_c = grad_c_last.clone() if grad_c_last is not None else torch.zeros_like(prev_h[0])
        grads = grad_t if grad_t is not None else torch.zeros_like(prev_h)
        steps = per_step(grads, keep_t, prev_c, tanh_c, *gates.split(H, -1), d_act, *d_act.split(H, -1))
        for grad, keep, cp, tc, i, f, g, o, d_act_s, d_i, d_f, d_g, d_o in reversed(steps):
            dh = grad + carry_h
            dc = torch.addcmul(carry_c, dh * o, 1 - tc * tc)
            torch.mul(dc * g, i * (1 - i), out=d_i)
            torch.mul(dc * cp, f * (1 - f), out=d_f)
            torch.mul(dc * i, 1 - g * g, out=d_g)
            torch.mul(dh * tc, o * (1 - o), out=d_o)
            carry_h = (d_act_s @ weight_hh).mul_(keep)
            carry_c = (dc * f).mul_(keep)
        flat = d_act.reshape(T * B, 4 * H)
        d_weight = flat.t() @ prev_h.reshape(T * B, H)
        return d_act.transpose(0, 1), carry_h, carry_c, None, d_weight


def lstm_scan(
    gi: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, keep: torch.Tensor, weight_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM recurrence with resets, hand-differentiated; same arguments as `lstm_scan_reference`.

    Runs in float32 (or the inputs' float64) whatever the autocast context; no double backward.
    """
    dtype = torch.float64 if gi.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=gi.device.type, enabled=False):
        return _LSTMScan.apply(gi.to(dtype), h0.to(dtype), c0.to(dtype), keep.to(dtype), weight_hh.to(dtype))
