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
from functools import lru_cache

import torch

from lightning_memrl.errors import MissingDependencyError

_MODULE = "mamba_ssm.ops.triton.ssd_combined"


@lru_cache(maxsize=1)
def _load() -> Callable | None:
    if importlib.util.find_spec("triton") is None or importlib.util.find_spec("einops") is None:
        return None
    spec = importlib.util.find_spec("mamba_ssm")
    if spec is None or spec.submodule_search_locations is None:
        return None
    if "mamba_ssm" not in sys.modules:
        # An empty package with the installed path: submodules import without running __init__.
        package = types.ModuleType("mamba_ssm")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["mamba_ssm"] = package
    try:
        return importlib.import_module(_MODULE).mamba_chunk_scan_combined
    except ImportError:
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
