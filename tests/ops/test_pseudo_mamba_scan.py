"""The Pseudo-Mamba scan: hand-differentiated loop and Triton kernel equal the autograd reference."""

import pytest
import torch

from lightning_memrl.ops.pseudo_mamba_scan import pseudo_mamba_scan, pseudo_mamba_scan_reference, triton_available


def _inputs(gen, B=3, T=17, H=6, reset_p=0.2, dtype=torch.float64, device="cpu"):
    u = torch.randn(B, T, H, generator=gen, dtype=dtype).to(device).requires_grad_()
    h0 = torch.randn(B, H, generator=gen, dtype=dtype).to(device).requires_grad_()
    keep = (torch.rand(B, T, generator=gen) >= reset_p).to(dtype).to(device)
    return u, h0, keep


def _values_and_grads(fn, u, h0, keep, grad_out, **kwargs):
    y = fn(u, h0, keep, **kwargs)
    return (y, *torch.autograd.grad((y * grad_out).sum(), (u, h0)))


@pytest.mark.parametrize("reset_p", [0.0, 0.3, 1.0])
def test_torch_fast_path_matches_reference(reset_p):
    gen = torch.Generator().manual_seed(0)
    u, h0, keep = _inputs(gen, reset_p=reset_p)
    grad_out = torch.randn(u.shape, generator=gen, dtype=torch.float64)
    ours = _values_and_grads(pseudo_mamba_scan, u, h0, keep, grad_out, fused=False)
    ref = _values_and_grads(pseudo_mamba_scan_reference, u, h0, keep, grad_out)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_torch_fast_path_passes_gradcheck():
    u, h0, keep = _inputs(torch.Generator().manual_seed(1), B=2, T=5, H=3)
    assert torch.autograd.gradcheck(lambda a, b: pseudo_mamba_scan(a, b, keep, fused=False), (u, h0))


@pytest.mark.gpu
@pytest.mark.parametrize("H", [7, 128, 300])
def test_triton_kernel_matches_reference(H):
    assert triton_available(), "triton is needed for the fused Pseudo-Mamba kernel on the GPU machine"
    gen = torch.Generator().manual_seed(2)
    u, h0, keep = _inputs(gen, B=5, T=64, H=H, dtype=torch.float32, device="cuda")
    grad_out = torch.randn(u.shape, generator=gen).cuda()
    ours = _values_and_grads(pseudo_mamba_scan, u, h0, keep, grad_out, fused=True)
    ref = _values_and_grads(pseudo_mamba_scan_reference, u, h0, keep, grad_out)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
