"""One step's attention read: the reference is softmax attention over the visible slots; the Triton kernel
(reading each row's slots up to its last visible one) equals it on CUDA."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.ops.kernel_choice import forget_warnings
from lightning_memrl.ops.step_attention import step_attention, step_attention_choice, step_attention_reference


def _inputs(b, n, nh, d, dv, seed, device="cpu", age=True):
    g = torch.Generator(device).manual_seed(seed)
    draw = lambda fn, *shape: fn(*shape, generator=g, device=device)
    query, keys, values = draw(torch.randn, b, nh, d), draw(torch.randn, b, n, nh, d), draw(torch.randn, b, n, nh, dv)
    visible = draw(torch.rand, b, n) < 0.5
    visible[0] = False  # a row that sees nothing
    if b > 1:
        visible[1] = torch.arange(n, device=device) < n // 3  # a ring filled from slot 0 since its last reset
    ages = draw(torch.randn, nh, n) if age else None
    pointer = torch.randint(0, n, (b,), generator=g, device=device) if age else None
    return [query, keys, values, visible, ages, pointer]


def _naive(query, keys, values, visible, ages, pointer):
    """Row by row, head by head, over the visible slots only."""
    b, n, nh, _ = keys.shape
    out = torch.zeros(b, nh, values.shape[-1])
    for row in range(b):
        seen = visible[row].nonzero()[:, 0]
        for h in range(nh):
            if not len(seen):
                continue
            logits = keys[row, seen, h] @ query[row, h]
            if ages is not None:  # the entry in slot s was written (pointer - 1 - s) % N + 1 steps ago
                logits = logits + ages[h, (pointer[row] - 1 - seen) % n]
            out[row, h] = logits.softmax(0) @ values[row, seen, h]
    return out


@settings(max_examples=20, deadline=None)
@given(b=st.integers(1, 4), n=st.integers(1, 12), nh=st.sampled_from([1, 2, 4]), seed=st.integers(0, 2**16))
def test_the_reference_is_softmax_attention_over_the_visible_slots(b, n, nh, seed):
    inputs = _inputs(b, n, nh, 4, 3, seed)
    torch.testing.assert_close(step_attention_reference(*inputs), _naive(*inputs), atol=1e-5, rtol=1e-5)


def test_without_a_fused_kernel_the_read_is_the_reference_and_gradients_flow():
    forget_warnings()
    query, keys, values, visible, ages, pointer = _inputs(3, 7, 2, 6, 4, 0)
    query.requires_grad_(True)
    choice = step_attention_choice(query, keys)
    assert not choice.fused and choice.ran == "eager"
    for blocker in ("the inputs are on cpu", "a gradient is needed"):
        assert blocker in choice.why
    out = step_attention(query, keys, values, visible, ages, pointer)
    out.sum().backward()
    assert query.grad is not None and query.grad[0].abs().max() == 0  # the row that sees nothing
    with pytest.warns(UserWarning, match="step attention: triton was requested but cannot run"):
        step_attention(query.detach(), keys, values, visible, ages, pointer, fused=True)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(4096, 1024, 4, 16, 16), (300, 257, 4, 32, 32), (7, 70, 2, 16, 8), (5, 33, 3, 3, 5)])
@pytest.mark.parametrize("age", [True, False])
def test_the_triton_kernel_equals_the_reference(shape, age):
    inputs = _inputs(*shape, seed=1, device="cuda", age=age)
    assert step_attention_choice(inputs[0], inputs[1]).fused
    with torch.no_grad():
        fused = step_attention(*inputs)
        reference = step_attention(*inputs, fused=False)
    torch.testing.assert_close(fused, reference, atol=2e-5, rtol=2e-5)
    assert fused[0].abs().max() == 0


@pytest.mark.gpu
def test_the_triton_kernel_reads_strided_rows():
    """A buffer whose rows are strided (a slice of a larger one) reads as its contiguous copy."""
    query, keys, values, visible, _, _ = _inputs(5, 24, 2, 16, 16, seed=2, device="cuda", age=False)
    with torch.no_grad():
        fused = step_attention(query, keys[:, ::2], values[:, ::2], visible[:, ::2])
        reference = step_attention(query, keys[:, ::2].contiguous(), values[:, ::2].contiguous(), visible[:, ::2])
    torch.testing.assert_close(fused, reference, atol=2e-5, rtol=2e-5)


def test_the_read_runs_under_autocast_with_a_lower_precision_query():
    """Acting under bf16 autocast: the query comes in bf16, the stored keys and values stay float32."""
    query, keys, values, visible, ages, pointer = _inputs(3, 9, 2, 8, 8, seed=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = step_attention(query.bfloat16(), keys, values, visible, ages, pointer)
    exact = step_attention(query, keys, values, visible, ages, pointer)
    torch.testing.assert_close(low.float(), exact, atol=5e-2, rtol=5e-2)
