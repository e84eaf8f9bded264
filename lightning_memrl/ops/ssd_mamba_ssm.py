"""mamba_ssm's fused Triton SSD scan (`mamba_chunk_scan_combined`) behind the same call as `ops.ssd`.

mamba_ssm's package `__init__` imports its compiled CUDA extension, which the `[gpu]` extra may lack
(building it takes long; the Triton SSD kernels do not need it). `load_chunk_scan_combined` therefore
registers an empty `mamba_ssm` package pointing at the installed files and imports only the
Triton module. Resets are passed as `seq_idx = cumsum(reset)`: mamba_ssm masks every interaction
between positions of different `seq_idx`, and treats the initial state as `seq_idx` 0, exactly the
segment convention of `ops.ssd.ssd_chunked_scan`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from functools import cache

import torch

from lightning_memrl.errors import MissingDependencyError

_MODULE = "mamba_ssm.ops.triton.ssd_combined"
_NORM_MODULE = "mamba_ssm.ops.triton.layernorm_gated"


def _register_package() -> bool:
    """Put an empty `mamba_ssm` package (the installed path, its spec) in `sys.modules`, once."""
    if "mamba_ssm" in sys.modules:
        return True
    spec = importlib.util.find_spec("mamba_ssm")
    if spec is None or spec.submodule_search_locations is None:
        return False
    # Submodules import through it without running the real __init__; the spec lets a later
    # find_spec("mamba_ssm") answer instead of raising on a module without one.
    package = types.ModuleType("mamba_ssm")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["mamba_ssm"] = package
    return True


@cache
def _load(module: str = _MODULE, name: str = "mamba_chunk_scan_combined") -> Callable | None:
    if importlib.util.find_spec("triton") is None or importlib.util.find_spec("einops") is None:
        return None
    if not _register_package():
        return None
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def mamba_ssm_available() -> bool:
    """Whether mamba_ssm's Triton SSD scan can be imported (triton, einops and mamba_ssm installed)."""
    return _load() is not None


def load_chunk_scan_combined() -> Callable:
    """`mamba_ssm.ops.triton.ssd_combined.mamba_chunk_scan_combined`, or a clear error naming the extra."""
    fn = _load()
    if fn is None:
        raise MissingDependencyError(
            "backend='mamba_ssm' needs mamba-ssm's Triton kernels (mamba-ssm, triton, einops): "
            "pip install 'lightning-memrl[gpu]', or use backend='torch'"
        )
    return fn


def gated_rms_norm_mamba_ssm(
    x: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, eps: float
) -> torch.Tensor | None:
    """`rms_norm(x * silu(gate)) * weight` by mamba_ssm's fused Triton kernel (forward and backward in
    one pass each), or None where that kernel cannot be imported (the caller falls back)."""
    norm = _load(_NORM_MODULE, "rmsnorm_fn")
    if norm is None:
        return None
    return norm(x, weight, None, z=gate, eps=eps, norm_before_gate=False)


def ssd_mamba_ssm(
    x: torch.Tensor,
    dt_raw: torch.Tensor,
    dt_bias: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    reset: torch.Tensor,
    initial_state: torch.Tensor,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused SSD scan on CUDA, including the softplus of `dt` and the `D` skip.

    Args:
        x: `[batch, T, heads, head_dim]`.
        dt_raw: `[batch, T, heads]` step sizes before `softplus(dt_raw + dt_bias)`.
        dt_bias: `[heads]`.
        A: `[heads]` negative decay rates.
        B: `[batch, T, d_state]`.
        C: `[batch, T, d_state]`.
        D: `[heads]` skip weights.
        reset: `[batch, T]` bool episode starts.
        initial_state: `[batch, heads, head_dim, d_state]`.
        chunk_size: SSD chunk length.

    Returns:
        `(y + D x [batch, T, heads, head_dim], final state [batch, heads, head_dim, d_state])`.
    """
    scan = load_chunk_scan_combined()
    seq_idx = reset.to(torch.int32).cumsum(dim=1, dtype=torch.int32).contiguous()
    y, final_state = scan(
        x.contiguous(),
        dt_raw.contiguous(),
        A,
        B.unsqueeze(2).contiguous(),
        C.unsqueeze(2).contiguous(),
        chunk_size,
        D=D,
        dt_bias=dt_bias,
        initial_states=initial_state.contiguous(),
        seq_idx=seq_idx,
        dt_softplus=True,
        return_final_states=True,
    )
    return y, final_state.to(initial_state.dtype)
