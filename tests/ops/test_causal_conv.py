"""The [B, T, C] depthwise causal convolution equals nn.Conv1d(groups=C), values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from lightning_memrl.ops.causal_conv import depthwise_causal_conv


@pytest.mark.parametrize("K, T", [(1, 5), (4, 1), (4, 9), (3, 2)])
def test_equals_conv1d_values_and_gradients(K, T):
    gen = torch.Generator().manual_seed(K * 10 + T)
    B, C = 3, 5
    padded = torch.randn(B, K - 1 + T, C, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(C, 1, K, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(C, generator=gen, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(B, T, C, generator=gen, dtype=torch.float64)
    results = []
    for fn in (
        lambda: depthwise_causal_conv(padded, weight, bias),
        lambda: F.conv1d(padded.transpose(1, 2), weight, bias, groups=C).transpose(1, 2),
    ):
        out = fn()
        grads = torch.autograd.grad((out * grad_out).sum(), (padded, weight, bias))
        results.append((out, *grads))
    for ours, ref in zip(*results, strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-10)


def test_gradcheck():
    gen = torch.Generator().manual_seed(0)
    args = (
        torch.randn(2, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True),
        torch.randn(3, 1, 4, generator=gen, dtype=torch.float64, requires_grad=True),
        torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(depthwise_causal_conv, args)
