"""Whether the optional Triton kernels of `ops/` can be used here."""

from __future__ import annotations

import importlib.util
from functools import lru_cache


@lru_cache(maxsize=1)
def triton_available() -> bool:
    """Whether triton is importable (the kernels still need CUDA tensors)."""
    return importlib.util.find_spec("triton") is not None
