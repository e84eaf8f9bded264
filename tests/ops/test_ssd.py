"""The chunked SSD scan equals the sequential recurrence, values and gradients, with resets anywhere."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.ops.ssd import ssd_chunked_scan, ssd_sequential_reference


def _inputs(gen, b, T, h=2, p=3, n=4, reset_p=0.2, dtype=torch.float64):
    x = torch.randn(b, T, h, p, generator=gen, dtype=dtype)
    dt = torch.rand(b, T, h, generator=gen, dtype=dtype) + 0.05
    A = -(torch.rand(h, generator=gen, dtype=dtype) * 2 + 0.1)
    B = torch.randn(b, T, n, generator=gen, dtype=dtype)
    C = torch.randn(b, T, n, generator=gen, dtype=dtype)
    reset = torch.rand(b, T, generator=gen) < reset_p
    s0 = torch.randn(b, h, p, n, generator=gen, dtype=dtype)
    return x, dt, A, B, C, reset, s0


@settings(max_examples=30, deadline=None)
@given(
    b=st.integers(1, 3),
    T=st.integers(1, 40),
    chunk=st.sampled_from([1, 3, 8, 16, 64]),
    reset_p=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**16),
)
def test_chunked_equals_sequential(b, T, chunk, reset_p, seed):
    args = _inputs(torch.Generator().manual_seed(seed), b, T, reset_p=reset_p)
    y, s = ssd_chunked_scan(*args, chunk_size=chunk)
    y_ref, s_ref = ssd_sequential_reference(*args)
    torch.testing.assert_close(y, y_ref, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(s, s_ref, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("reset_at", [[], [0], [7, 8], [4, 12, 13]])  # chunk starts/ends with chunk_size 4
def test_gradients_match_the_reference(reset_at):
    gen = torch.Generator().manual_seed(5)
    x, dt, A, B, C, reset, s0 = _inputs(gen, 2, 15, reset_p=0.0)
    reset[:, reset_at] = True
    leaves = [t.requires_grad_() for t in (x, dt, A, B, C, s0)]
    grad_y = torch.randn(2, 15, 2, 3, generator=gen, dtype=torch.float64)
    grad_s = torch.randn(s0.shape, generator=gen, dtype=torch.float64)
    grads = []
    for fn, kwargs in ((ssd_chunked_scan, {"chunk_size": 4}), (ssd_sequential_reference, {})):
        y, s = fn(x, dt, A, B, C, reset, s0, **kwargs)
        grads.append(torch.autograd.grad((y * grad_y).sum() + (s * grad_s).sum(), leaves))
    for ours, ref in zip(*grads, strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-9)


def test_reset_cuts_all_dependence_on_the_past():
    gen = torch.Generator().manual_seed(6)
    x, dt, A, B, C, reset, s0 = _inputs(gen, 1, 12, reset_p=0.0)
    reset[0, 5] = True
    x.requires_grad_()
    s0.requires_grad_()
    y, _ = ssd_chunked_scan(x, dt, A, B, C, reset, s0, chunk_size=4)
    gx, gs = torch.autograd.grad(y[:, 5:].sum(), (x, s0))
    assert gx[:, :5].abs().max() == 0 and gs.abs().max() == 0
    assert gx[:, 5:].abs().max() > 0


def test_float32_long_sequence_stays_close_to_float64():
    args = _inputs(torch.Generator().manual_seed(7), 2, 300, reset_p=0.01)
    y64, _ = ssd_chunked_scan(*args, chunk_size=64)
    y32, _ = ssd_chunked_scan(*(a.float() if a.is_floating_point() else a for a in args), chunk_size=64)
    torch.testing.assert_close(y32.double(), y64, atol=1e-4, rtol=1e-4)
