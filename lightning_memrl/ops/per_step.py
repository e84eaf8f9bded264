"""Per-step views of time-major tensors, for the eager scans' Python loops."""

from __future__ import annotations

import torch


def per_step(*tensors: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """`[(x[0], y[0], ...), (x[1], y[1], ...), ...]` for `[T, ...]` tensors `x, y, ...`, taken at once (`unbind`).

    In an eager scan's loop over T, indexing each tensor at each step costs more than the step's arithmetic
    at small batches (4 sequences x 32 steps: the GRU scan's forward and backward 1.4x faster with these views).
    """
    return list(zip(*(x.unbind(0) for x in tensors), strict=True))
