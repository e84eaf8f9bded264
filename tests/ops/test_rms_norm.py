"""The hand-differentiated (gated) RMSNorm equals nn.RMSNorm of x * silu(gate), values and gradients."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.ops.rms_norm import rms_norm


@pytest.mark.parametrize("gated", [False, True])
def test_equals_nn_rmsnorm_values_and_gradients(gated):
    gen = torch.Generator().manual_seed(int(gated))
    x = torch.randn(3, 4, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    gate = torch.randn(3, 4, 8, generator=gen, dtype=torch.float64, requires_grad=True) if gated else None
    norm = nn.RMSNorm(8, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(8, generator=gen, dtype=torch.float64))
    grad_out = torch.randn(3, 4, 8, generator=gen, dtype=torch.float64)
    leaves = [t for t in (x, gate, norm.weight) if t is not None]
    results = []
    for fn in (
        lambda: rms_norm(x, norm.weight, 1e-5, gate=gate),
        lambda: norm(x * F.silu(gate) if gated else x),
    ):
        out = fn()
        results.append((out, *torch.autograd.grad((out * grad_out).sum(), leaves)))
    for ours, ref in zip(*results, strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-10)


def test_gradcheck_gated():
    gen = torch.Generator().manual_seed(2)
    x, gate = (torch.randn(2, 3, 5, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2))
    weight = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, g, w: rms_norm(a, w, 1e-5, gate=g), (x, gate, weight))
