"""The hand-differentiated LSTM scan equals plain autograd, values and gradients (final cell state too)."""

import pytest
import torch

from lightning_memrl.ops import lstm_scan, lstm_scan_reference


@pytest.mark.parametrize("reset_p", [0.0, 0.2, 1.0])
def test_lstm_scan_matches_reference_in_float64(reset_p):
    gen = torch.Generator().manual_seed(1)
    B, T, H = 4, 13, 5
    gi = torch.randn(B, T, 4 * H, dtype=torch.float64, generator=gen, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True)
    c0 = torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True)
    keep = (torch.rand(B, T, generator=gen) >= reset_p).double()
    w = torch.randn(4 * H, H, dtype=torch.float64, generator=gen, requires_grad=True)
    grad_out = torch.randn(B, T, H, dtype=torch.float64, generator=gen)
    grad_c = torch.randn(B, H, dtype=torch.float64, generator=gen)

    results = []
    for fn in (lstm_scan, lstm_scan_reference):
        y, c = fn(gi, h0, c0, keep, w)
        loss = (y * grad_out).sum() + (c * grad_c).sum()
        results.append((y, c, *torch.autograd.grad(loss, (gi, h0, c0, w))))
    for ours, ref in zip(*results, strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-10)


def test_lstm_scan_gradient_when_only_the_outputs_are_used():
    gen = torch.Generator().manual_seed(3)
    gi = torch.randn(2, 5, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    args = (torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 5))
    w = torch.randn(8, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    ours = torch.autograd.grad(lstm_scan(gi, *args, w)[0].sum(), (gi, w))
    ref = torch.autograd.grad(lstm_scan_reference(gi, *args, w)[0].sum(), (gi, w))
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_lstm_scan_passes_gradcheck():
    gen = torch.Generator().manual_seed(2)
    B, T, H = 2, 4, 3
    args = (
        torch.randn(B, T, 4 * H, dtype=torch.float64, generator=gen, requires_grad=True),
        torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True),
        torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True),
        torch.tensor([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]], dtype=torch.float64),
        torch.randn(4 * H, H, dtype=torch.float64, generator=gen, requires_grad=True),
    )
    assert torch.autograd.gradcheck(lstm_scan, args)


def test_lstm_scan_runs_in_float32_under_autocast():
    gi = torch.randn(2, 3, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, c = lstm_scan(gi, torch.zeros(2, 2), torch.zeros(2, 2), torch.ones(2, 3), torch.randn(8, 2))
    assert y.dtype == torch.float32 and c.dtype == torch.float32
