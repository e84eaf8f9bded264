"""The hand-differentiated GRU scan equals plain autograd, values and gradients."""

import pytest
import torch

from lightning_memrl.ops import gru_scan, gru_scan_reference
from lightning_memrl.ops.gru_scan import gru_scan_choice
from lightning_memrl.ops.kernel_choice import forget_warnings
from lightning_memrl.ops.triton_support import triton_available


@pytest.mark.parametrize("reset_p", [0.0, 0.2, 1.0])
def test_gru_scan_matches_reference_in_float64(reset_p):
    gen = torch.Generator().manual_seed(1)
    B, T, H = 4, 13, 5
    gi = torch.randn(B, T, 3 * H, dtype=torch.float64, generator=gen, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True)
    keep = (torch.rand(B, T, generator=gen) >= reset_p).double()
    w = torch.randn(3 * H, H, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(3 * H, dtype=torch.float64, generator=gen, requires_grad=True)
    grad_out = torch.randn(B, T, H, dtype=torch.float64, generator=gen)

    results = []
    for fn in (gru_scan, gru_scan_reference):
        y = fn(gi, h0, keep, w, b)
        results.append((y, *torch.autograd.grad((y * grad_out).sum(), (gi, h0, w, b))))
    for ours, ref in zip(*results, strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-10)


def test_gru_scan_passes_gradcheck():
    gen = torch.Generator().manual_seed(2)
    B, T, H = 2, 4, 3
    args = (
        torch.randn(B, T, 3 * H, dtype=torch.float64, generator=gen, requires_grad=True),
        torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True),
        torch.tensor([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]], dtype=torch.float64),
        torch.randn(3 * H, H, dtype=torch.float64, generator=gen, requires_grad=True),
        torch.randn(3 * H, dtype=torch.float64, generator=gen, requires_grad=True),
    )
    assert torch.autograd.gradcheck(gru_scan, args)


def test_gru_scan_runs_in_float32_under_autocast():
    gi = torch.randn(2, 3, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = gru_scan(gi, torch.zeros(2, 2), torch.ones(2, 3), torch.randn(6, 2), torch.zeros(6))
    assert y.dtype == torch.float32


def test_fused_request_on_cpu_runs_the_eager_scan_with_a_warning():
    """`fused=True` where the kernels cannot run (CPU tensors, no triton) is the eager scan, warned, not an error."""
    gen = torch.Generator().manual_seed(4)
    args = (torch.randn(3, 5, 48, generator=gen), torch.randn(3, 16, generator=gen), torch.ones(3, 5))
    weights = (torch.randn(48, 16, generator=gen), torch.randn(48, generator=gen))
    forget_warnings()
    with pytest.warns(UserWarning, match="GRU scan: triton was requested but cannot run"):
        fused = gru_scan(*args, *weights, fused=True)
    torch.testing.assert_close(fused, gru_scan(*args, *weights, fused=False))


@pytest.mark.gpu
@pytest.mark.parametrize(("B", "T", "H"), [(5, 7, 16), (300, 129, 128)])
def test_triton_gru_scan_matches_the_eager_scan_on_cuda(B, T, H):
    """The fused kernels (one program per 16 sequences walking the time axis) = the eager hand-written scan."""
    assert triton_available(), "the GPU machine has triton"
    gen = torch.Generator(device="cuda").manual_seed(0)
    gi = torch.randn(B, T, 3 * H, device="cuda", generator=gen, requires_grad=True)
    h0 = torch.randn(B, H, device="cuda", generator=gen, requires_grad=True)
    choice = gru_scan_choice(gi, h0, True)
    assert choice.fused, f"the kernels must run (else fused=True runs eager): {choice}"
    keep = (torch.rand(B, T, device="cuda", generator=gen) > 0.1).float()
    w = (torch.randn(3 * H, H, device="cuda", generator=gen) / H**0.5).requires_grad_()
    b = torch.randn(3 * H, device="cuda", generator=gen, requires_grad=True)
    grad_out = torch.randn(B, T, H, device="cuda", generator=gen)
    results = []
    for fused in (True, False):
        y = gru_scan(gi, h0, keep, w, b, fused=fused)
        results.append((y, *torch.autograd.grad((y * grad_out).sum(), (gi, h0, w, b))))
    for ours, eager in zip(*results, strict=True):
        torch.testing.assert_close(ours, eager, atol=1e-4, rtol=1e-4)
