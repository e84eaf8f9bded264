"""Batched helpers the tasks share: draw new episode content for the rows of finished envs.

Fixed-length tasks hold an episode's content (sequences, keys, maps) as `[N, ...]` tensors and must
redraw it only for the envs whose episode ends. On CPU the cheapest way is to draw exactly those rows
(`mask.nonzero()` costs nothing there); on an accelerator `nonzero` would wait for the device, so
every row is drawn and the old rows are kept with `torch.where`. `redraw_rows` and `put_rows` hide
that choice: both paths give each new episode fresh content from the task's generator.
"""

from __future__ import annotations

import torch


def draws_every_row(device: torch.device) -> bool:
    """Whether new episode content is drawn for every row (accelerators) or only the reset rows (CPU)."""
    return device.type != "cpu"


def redraw_rows(mask: torch.Tensor) -> torch.Tensor:
    """Row indices to draw new episode content for.

    Args:
        mask: `[N]` bool, true where an episode starts.

    Returns:
        `[M]` long: on CPU the rows where `mask` is true; elsewhere all `N` rows (no host sync).
    """
    if draws_every_row(mask.device):
        return torch.arange(mask.shape[0], device=mask.device)
    return mask.nonzero().squeeze(1)


def put_rows(dst: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor, values: torch.Tensor) -> None:
    """Write `values [M, ...]` into the rows of `dst [N, ...]` chosen by `redraw_rows(mask)`, in place.

    With all `N` rows drawn, the rows where `mask` is false keep their content.

    Args:
        dst: the task tensor to update (may be a view of one).
        rows: the indices `redraw_rows(mask)` returned.
        mask: `[N]` bool, true where an episode starts.
        values: new content, one row per entry of `rows`.
    """
    if rows.shape[0] == dst.shape[0]:
        keep_old = ~mask.view(-1, *([1] * (dst.dim() - 1)))
        dst.copy_(torch.where(keep_old, dst, values))
    else:
        dst[rows] = values


def random_subsets(rows: int, population: int, size: int, generator: torch.Generator, device: torch.device):
    """`[rows, size]` long: per row, `size` distinct values of `range(population)` in random order.

    Each row is the head of a uniformly random permutation, so every ordered subset is equally likely.
    """
    keys = torch.rand(rows, population, device=device, generator=generator)
    return keys.argsort(dim=1)[:, :size]
