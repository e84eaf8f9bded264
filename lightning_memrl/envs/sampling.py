"""Batched helpers the tasks share: redraw the rows of finished envs, write one-hot observations.

Fixed-length tasks hold an episode's content (sequences, keys, maps) as `[N, ...]` tensors and must
redraw it only for the envs whose episode ends. On CPU the cheapest way is to draw exactly those rows
(`mask.nonzero()` costs nothing there); on an accelerator `nonzero` would wait for the device, so
every row is drawn and the old rows are kept with `torch.where`. `redraw_rows` and `put_rows` hide
that choice: both paths give each new episode fresh content from the task's generator.
"""

from __future__ import annotations

import torch


def redraw_rows(mask: torch.Tensor) -> torch.Tensor:
    """Row indices to draw new episode content for.

    Args:
        mask: `[N]` bool, true where an episode starts.

    Returns:
        `[M]` long: on CPU the rows where `mask` is true; elsewhere all `N` rows (no host sync).
    """
    if mask.device.type == "cpu":
        return mask.nonzero().squeeze(1)
    return torch.arange(mask.shape[0], device=mask.device)


def put_rows(dst: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor, values: torch.Tensor) -> None:
    """Write `values [M, ...]` into the rows of `dst [N, ...]` chosen by `redraw_rows(mask)`, in place.

    Args:
        dst: the task tensor to update.
        rows: the indices `redraw_rows(mask)` returned.
        mask: `[N]` bool, true where an episode starts.
        values: new content, one row per entry of `rows`.
    """
    if mask.device.type == "cpu":
        dst[rows] = values
    else:
        keep_old = ~mask.view(-1, *([1] * (dst.dim() - 1)))
        dst.copy_(torch.where(keep_old, dst, values))


def random_subsets(rows: int, population: int, size: int, generator: torch.Generator, device: torch.device):
    """`[rows, size]` long: per row, `size` distinct values of `range(population)` in random order.

    Each row is the head of a uniformly random permutation, so every ordered subset is equally likely.
    """
    keys = torch.rand(rows, population, device=device, generator=generator)
    return keys.argsort(dim=1)[:, :size]


def one_hot_into(obs: torch.Tensor, index: torch.Tensor, value: torch.Tensor, offset: int = 0) -> None:
    """Set `obs[i, offset + index[i]] = value[i]` for every row, in place.

    Args:
        obs: `[N, F]` float observation buffer (zeros in the written block).
        index: `[N]` long, the hot position within the block (any valid value where `value` is 0).
        value: `[N]` float, 1 where the one-hot is shown and 0 where the block stays blank.
        offset: first column of the one-hot block.
    """
    obs.scatter_(1, (index + offset).unsqueeze(1), value.unsqueeze(1))
