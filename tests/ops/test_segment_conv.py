"""The dense masked convolution of Mamba2's GPU path equals the CPU path's (subtract-the-crossings) form."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from lightning_memrl.controllers.mamba2 import Mamba2Block
from lightning_memrl.ops.segment_conv import fused_segment_causal_conv_silu, segment_causal_conv_silu


def _case(seed: int, B: int = 4, T: int = 11, d_model: int = 16, device: str = "cpu"):
    torch.manual_seed(seed)
    block = Mamba2Block(d_model, d_state=4, head_dim=8, d_conv=4).to(device)
    gen = torch.Generator().manual_seed(seed)
    xbc = torch.randn(B, T, block.conv_dim, generator=gen).to(device).requires_grad_()
    conv_state = torch.randn(B, block.conv_dim, block.d_conv - 1, generator=gen).to(device).requires_grad_()
    reset = torch.rand(B, T, generator=gen) < 0.25
    reset[0, 0] = True  # a reset before the first step drops the carried state
    reset[1, T - 2] = True  # one inside the last K-1 steps shortens the carried-out window
    seg = reset.long().cumsum(1).to(device)
    return block, xbc, conv_state, seg


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_form_equals_the_cpu_path_with_gradients(seed):
    block, xbc, conv_state, seg = _case(seed)
    grads = []
    for run in ("cpu path", "dense"):
        if run == "cpu path":
            out, end = block._masked_conv(xbc, conv_state, seg)
            out = F.silu(out)
        else:
            out, end = segment_causal_conv_silu(xbc, conv_state, seg, block.conv1d.weight, block.conv1d.bias)
        gen = torch.Generator().manual_seed(9)
        loss = (out * torch.randn(out.shape, generator=gen)).sum() + (end * torch.randn(end.shape, generator=gen)).sum()
        inputs = [xbc, conv_state, block.conv1d.weight, block.conv1d.bias]
        grads.append((out.detach(), end.detach(), *torch.autograd.grad(loss, inputs)))
    for dense, reference in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(dense, reference, atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
def test_compiled_form_equals_the_dense_form_on_cuda():
    block, xbc, conv_state, seg = _case(3, B=8, T=300, d_model=64, device="cuda")
    args = (xbc, conv_state, seg, block.conv1d.weight, block.conv1d.bias)
    eager = segment_causal_conv_silu(*args)
    compiled = fused_segment_causal_conv_silu(*args)
    for c, e in zip(compiled, eager, strict=True):
        torch.testing.assert_close(c, e, atol=1e-5, rtol=1e-5)
    g_e = torch.autograd.grad(eager[0].square().sum() + eager[1].sum(), [xbc, block.conv1d.weight])
    g_c = torch.autograd.grad(compiled[0].square().sum() + compiled[1].sum(), [xbc, block.conv1d.weight])
    for c, e in zip(g_c, g_e, strict=True):
        torch.testing.assert_close(c, e, atol=1e-4, rtol=1e-4)


def test_a_compiler_failure_falls_back_to_the_eager_form_and_warns_once(monkeypatch):
    from lightning_memrl.ops import segment_conv

    def broken(*args):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(segment_conv, "_compiled", lambda: broken)
    monkeypatch.setattr(segment_conv, "_compile_failed", False)
    block, xbc, conv_state, seg = _case(4)
    args = (xbc, conv_state, seg, block.conv1d.weight, block.conv1d.bias)
    with pytest.warns(UserWarning, match="no compiler here"):
        first = fused_segment_causal_conv_silu(*args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would fail here
        second = fused_segment_causal_conv_silu(*args)
    for out in (first, second):
        for got, want in zip(out, segment_causal_conv_silu(*args), strict=True):
            torch.testing.assert_close(got, want)
