"""Mamba2: chunking invariance, reset masking of the convolution, backends and parameter layout."""

import pytest
import torch

from lightning_memrl.controllers import Mamba2, Mamba2Block
from lightning_memrl.errors import ConfigError, MissingDependencyError
from lightning_memrl.ops.ssd_mamba_ssm import mamba_ssm_available
from tests.controllers._helpers import random_state


def _block(**kwargs):
    kwargs = {"d_state": 4, "head_dim": 8, **kwargs}
    return Mamba2Block(16, **kwargs)


def test_chunk_size_does_not_change_the_result():
    torch.manual_seed(0)
    ref = Mamba2(hidden_size=16, d_state=4, head_dim=8, chunk_size=1)
    other = Mamba2(hidden_size=16, d_state=4, head_dim=8, chunk_size=16)
    other.load_state_dict(ref.state_dict())
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 37, 16, generator=gen)
    reset = torch.rand(2, 37, generator=gen) < 0.1
    state = random_state(ref.initial_state(2), gen)
    with torch.no_grad():
        y_ref, s_ref = ref.forward_sequence(x, state, reset)
        y, s = other.forward_sequence(x, state, reset)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s, s_ref, atol=1e-5, rtol=1e-5)


def test_reset_masks_the_convolution_window():
    # A reset one step after a large input: without the mask, the conv window would carry it over.
    block = _block(d_conv=4)
    x = torch.zeros(1, 6, 16)
    x[0, 2] = 100.0
    reset = torch.zeros(1, 6, dtype=torch.bool)
    reset[0, 3] = True
    with torch.no_grad():
        y, (conv_state, _) = block.forward_sequence(x, block.initial_state(1), reset)
        fresh, _ = block.forward_sequence(x[:, 3:], block.initial_state(1), torch.zeros(1, 3, dtype=torch.bool))
    torch.testing.assert_close(y[:, 3:], fresh)
    assert conv_state.abs().max() == 0  # the inputs after the reset are all zero


def test_state_shapes_follow_the_block_layout():
    block = _block(d_conv=3)
    conv, ssm = block.initial_state(5)
    assert conv.shape == (5, 32 + 2 * 4, 2)
    assert ssm.shape == (5, block.num_heads, 8, 4)


def test_parameter_names_match_mamba_ssm_mamba2():
    names = {name for name, _ in _block().named_parameters()}
    assert names == {
        "in_proj.weight",
        "conv1d.weight",
        "conv1d.bias",
        "dt_bias",
        "A_log",
        "D",
        "norm.weight",
        "out_proj.weight",
    }


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"backend": "cuda"}, "backend"),
        ({"head_dim": 5}, "head_dim"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"dt_min": 0.5, "dt_max": 0.1}, "dt_min"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        _block(**kwargs)


def test_mamba_ssm_backend_off_cuda_is_a_clear_error():
    block = _block(backend="mamba_ssm")
    x = torch.randn(1, 4, 16)
    with pytest.raises((ConfigError, MissingDependencyError), match="backend"):
        block.forward_sequence(x, block.initial_state(1), torch.zeros(1, 4, dtype=torch.bool))


@pytest.mark.gpu
@pytest.mark.parametrize("chunk_size", [16, 64])
def test_mamba_ssm_backend_equals_torch_backend_with_resets(chunk_size):
    assert mamba_ssm_available(), "the [gpu] extra (mamba-ssm, triton, einops) is needed on the GPU machine"
    torch.manual_seed(0)
    device = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch_path = Mamba2(hidden_size=64, num_layers=2, chunk_size=chunk_size, backend="torch").to(device)
    fused = Mamba2(hidden_size=64, num_layers=2, chunk_size=chunk_size, backend="mamba_ssm").to(device)
    fused.load_state_dict(torch_path.state_dict())
    gen = torch.Generator().manual_seed(1)
    B, T = 8, 300
    x = torch.randn(B, T, 64, generator=gen).to(device)
    reset = (torch.rand(B, T, generator=gen) < 0.02).to(device)
    reset[0, chunk_size] = True  # a reset on a chunk boundary
    state = tuple((c.to(device), s.to(device)) for c, s in random_state(torch_path.initial_state(B), gen))
    grad_y = torch.randn(B, T, 64, generator=gen).to(device)
    results = []
    for model in (torch_path, fused):
        model.zero_grad()
        y, (_, (_, ssm_last)) = model.forward_sequence(x, state, reset)
        ((y * grad_y).sum() + ssm_last.sum()).backward()
        results.append((y.detach(), ssm_last.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (y_t, s_t, g_t), (y_f, s_f, g_f) = results
    # mamba_ssm uses TF32 tensor cores inside its kernels: compare at TF32-level relative error.
    torch.testing.assert_close(y_f, y_t, rtol=2e-2, atol=2e-2 * y_t.abs().mean().item())
    torch.testing.assert_close(s_f, s_t, rtol=2e-2, atol=2e-2 * s_t.abs().mean().item())
    for name, grad in g_t.items():
        scale = grad.abs().mean().item() + 1e-12
        assert (g_f[name] - grad).abs().max().item() <= 5e-2 * max(scale, grad.abs().max().item()), name


def test_cpu_row_blocks_equal_the_whole_batch():
    torch.manual_seed(0)
    block = _block()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 9, 16, generator=gen)
    reset = torch.rand(5, 9, generator=gen) < 0.2
    state = random_state(block.initial_state(5), gen)
    with torch.no_grad():
        y_whole, s_whole = block.forward_sequence(x, state, reset)
        block.cpu_block_tokens = 2 * 9  # blocks of 2 rows
        y_rows, s_rows = block.forward_sequence(x, state, reset)
    torch.testing.assert_close(y_rows, y_whole)
    torch.testing.assert_close(s_rows, s_whole)


def test_stack_row_blocks_equal_the_whole_batch_with_gradients():
    torch.manual_seed(0)
    model = Mamba2(hidden_size=16, num_layers=2, d_state=4, head_dim=8)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(5, 9, 16, generator=gen, requires_grad=True)
    reset = torch.rand(5, 9, generator=gen) < 0.2
    state = random_state(model.initial_state(5), gen)
    grad_y = torch.randn(5, 9, 16, generator=gen)
    results = []
    for block_tokens in (4096, 2 * 9):  # whole batch, then blocks of 2 rows
        model.cpu_block_tokens = block_tokens
        y, end = model.forward_sequence(x, state, reset)
        params = [x, *model.parameters()]
        results.append((y, *end[1], *torch.autograd.grad((y * grad_y).sum(), params)))
    for rows, whole in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(rows, whole, atol=1e-5, rtol=1e-5)
