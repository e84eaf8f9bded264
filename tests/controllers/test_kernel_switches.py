"""No silent switch: a fused kernel asked for and unable to run warns once, naming what ran and why; the
default on CPU stays quiet; every controller reports what its last sequence ran (`sequence_kernel`)."""

import warnings

import pytest
import torch

from lightning_memrl.controllers import GRU, LSTM, Mamba2, PseudoMamba, Transformer
from lightning_memrl.controllers.base import kernels_ran
from lightning_memrl.ops.kernel_choice import forget_warnings
from tests._kernels import gru_scan_on_cpu


@pytest.fixture(autouse=True)
def _fresh_warnings():
    forget_warnings()
    yield
    forget_warnings()


def _run_sequence(ctl, batch=2, steps=4):
    x = torch.randn(batch, steps, ctl.input_size)
    reset = torch.zeros(batch, steps, dtype=torch.bool)
    return ctl.forward_sequence(x, ctl.initial_state(batch), reset)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GRU(hidden_size=16, fused_scan=True), r"GRU scan: triton was requested but cannot run \("),
        (lambda: PseudoMamba(hidden_size=16, fused=True), r"Pseudo-Mamba scan: triton was requested but cannot run \("),
    ],
)
def test_a_fused_request_that_cannot_run_warns_once_naming_what_ran_and_why(make, message):
    ctl = make()
    with pytest.warns(UserWarning, match=message + r"the inputs are on cpu.*\); eager runs instead"):
        _run_sequence(ctl)
    assert ctl.sequence_kernel.startswith("eager (the inputs are on cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run_sequence(ctl)  # once: the second call is quiet


@pytest.mark.parametrize(
    "make",
    [
        lambda: GRU(hidden_size=16),
        lambda: PseudoMamba(hidden_size=16),
        lambda: Mamba2(hidden_size=16, head_dim=8, num_layers=1),
        lambda: GRU(hidden_size=16, fused_scan=False),
        lambda: Mamba2(hidden_size=16, head_dim=8, num_layers=1, backend="torch"),
    ],
)
def test_the_default_on_cpu_and_an_explicit_fallback_are_quiet(make):
    ctl = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run_sequence(ctl)
    assert ctl.sequence_kernel is not None or kernels_ran(ctl)


def test_kernels_ran_names_what_each_controller_ran():
    gru, off = GRU(hidden_size=16), GRU(hidden_size=16, fused_scan=False)
    mamba = Mamba2(hidden_size=16, head_dim=8, num_layers=2)
    for ctl in (gru, off, mamba, LSTM(hidden_size=8), Transformer(hidden_size=8, num_heads=2, num_layers=1)):
        _run_sequence(ctl)
    assert kernels_ran(gru) == {"GRU": gru_scan_on_cpu()}
    assert kernels_ran(off) == {"GRU": "eager (turned off)"}
    no_mamba_ssm = "the inputs are on cpu; mamba-ssm, triton or einops is not installed"
    assert kernels_ran(mamba) == {"Mamba2Block": f"torch ({no_mamba_ssm})"}
    assert kernels_ran(LSTM(hidden_size=8)) == {}  # no choice to report


@pytest.mark.gpu
def test_the_default_on_cuda_warns_when_its_kernel_cannot_run():
    """On CUDA the fused kernel is the default: a GRU whose hidden size the kernels cannot take warns."""
    ctl = GRU(hidden_size=24).cuda()
    x = torch.randn(2, 4, 24, device="cuda")
    with pytest.warns(UserWarning, match=r"GRU scan: triton is the default here but cannot run \(.*hidden size 24"):
        ctl.forward_sequence(x, ctl.initial_state(2, "cuda"), torch.zeros(2, 4, dtype=torch.bool, device="cuda"))
