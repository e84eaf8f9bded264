"""Loading mamba_ssm's Triton modules without its package __init__ (regression: the second load raised)."""

import sys

import pytest

from lightning_memrl.ops import ssd_mamba_ssm


@pytest.fixture
def fake_mamba_ssm(tmp_path, monkeypatch):
    """A stand-in install: `triton`, `einops` and a `mamba_ssm` whose __init__ fails like the real one
    does without its CUDA extension."""
    for name in ("triton", "einops"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    triton_dir = tmp_path / "mamba_ssm" / "ops" / "triton"
    triton_dir.mkdir(parents=True)
    (tmp_path / "mamba_ssm" / "__init__.py").write_text("raise ImportError('no CUDA extension')\n")
    for part in (tmp_path / "mamba_ssm" / "ops", triton_dir):
        (part / "__init__.py").write_text("")
    (triton_dir / "ssd_combined.py").write_text("def mamba_chunk_scan_combined():\n    return 'scan'\n")
    (triton_dir / "layernorm_gated.py").write_text("def rmsnorm_fn():\n    return 'norm'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in list(sys.modules):
        if name.split(".")[0] in ("mamba_ssm", "triton", "einops"):
            monkeypatch.delitem(sys.modules, name)
    ssd_mamba_ssm._load.cache_clear()
    yield
    ssd_mamba_ssm._load.cache_clear()
    for name in list(sys.modules):
        if name.split(".")[0] == "mamba_ssm":
            del sys.modules[name]


def test_scan_and_gated_norm_both_load_without_the_package_init(fake_mamba_ssm):
    assert ssd_mamba_ssm.mamba_ssm_available()
    assert ssd_mamba_ssm.load_chunk_scan_combined()() == "scan"
    norm = ssd_mamba_ssm._load(ssd_mamba_ssm._NORM_MODULE, "rmsnorm_fn")  # raised ValueError before
    assert norm is not None and norm() == "norm"
