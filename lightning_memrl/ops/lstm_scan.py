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
        h, c = h0, c0
        for t in range(T):
            hp = torch.mul(h, keep_t[t], out=prev_h[t])
            cp = torch.mul(c, keep_t[t], out=prev_c[t])
            act = torch.addmm(gi_t[t], hp, w_t, out=gates[t])
            torch.sigmoid_(act[:, : 2 * H])
            torch.tanh_(act[:, 2 * H : 3 * H])
            torch.sigmoid_(act[:, 3 * H :])
            c = torch.addcmul(cp * act[:, H : 2 * H], act[:, :H], act[:, 2 * H : 3 * H])
            torch.tanh(c, out=tanh_c[t])
            h = torch.mul(act[:, 3 * H :], tanh_c[t], out=out[t])
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
        for t in range(T - 1, -1, -1):
            i, f, g, o = (gates[t, :, j * H : (j + 1) * H] for j in range(4))
            tc = tanh_c[t]
            dh = carry_h if grad_t is None else grad_t[t] + carry_h
            dc = torch.addcmul(carry_c, dh * o, 1 - tc * tc)
            torch.mul(dc * g, i * (1 - i), out=d_act[t, :, :H])
            torch.mul(dc * prev_c[t], f * (1 - f), out=d_act[t, :, H : 2 * H])
            torch.mul(dc * i, 1 - g * g, out=d_act[t, :, 2 * H : 3 * H])
            torch.mul(dh * tc, o * (1 - o), out=d_act[t, :, 3 * H :])
            carry_h = (d_act[t] @ weight_hh).mul_(keep_t[t])
            carry_c = (dc * f).mul_(keep_t[t])
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
