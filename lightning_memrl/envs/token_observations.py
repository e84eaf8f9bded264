"""Observations that show one item (or nothing) beside fixed per-step flags, read from a small table.

The token tasks (copy, recall, binding, ...) observe at every step one item of their per-episode
content (a token, a key, a requested position) as a one-hot, next to flags that depend only on the
step. Writing those columns one by one costs a kernel each; instead every observation there can be is
a row of a small table, and a step picks one row per env: three kernels whatever the layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class TokenObservations:
    """Per-step observations `[N, D]` built as rows of a table of `P * (num_items + 1)` observations.

    Steps are grouped in phases (a phase is what the flags say, e.g. "presentation" or "query"). In
    phase `p` the observation is `phase_rows[p]`, plus, where the phase shows items, the one-hot of the
    item in the columns `shows[p] = (first, count)`. The item of an env at step `t` is
    `tape[env, tape_column[t]]`; an item of -1 shows nothing.

    Args:
        phase_rows: `[P, D]` float, each phase's observation without its item.
        shows: per phase, `(first column, number of items)` of its item one-hot, or None where the
            phase shows no item.
        tape_column: `[H + 1]` long, per step, the column of the tape holding the item shown.
        phase: `[H + 1]` long, per step, its phase.
    """

    def __init__(
        self,
        phase_rows: torch.Tensor,
        shows: Sequence[tuple[int, int] | None],
        tape_column: torch.Tensor,
        phase: torch.Tensor,
    ):
        num_phases, size = phase_rows.shape
        if len(shows) != num_phases:
            raise ValueError(f"need one entry of `shows` per phase ({num_phases}), got {len(shows)}")
        for first, count in filter(None, shows):
            if first < 0 or count < 1 or first + count > size:
                raise ValueError(f"an item one-hot ({first}, {count}) must fit in the {size} columns")
        block = 1 + max((count for _, count in filter(None, shows)), default=0)  # "nothing shown", the items
        rows = phase_rows.repeat_interleave(block, dim=0)
        for p, shown in enumerate(shows):
            if shown is not None:
                first, count = shown
                items = torch.arange(count, device=rows.device)
                rows[p * block + 1 + items, first + items] = 1.0
        self.rows = rows
        # per step: the tape column, and the first row of its phase's block shifted by one, so that
        # `item + base` picks the row of item (and -1 the "nothing shown" row)
        self.schedule = torch.stack([tape_column, phase * block + 1], dim=1)
        self.size = size

    def __call__(self, tape: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The observations `[N, D]` of envs at steps `t [N]` whose episode content is `tape [N, C]`."""
        step = self.schedule.index_select(0, t)
        item = tape.gather(1, step[:, :1]).squeeze(1)
        return self.rows.index_select(0, item + step[:, 1])


def column_at(table: torch.Tensor, schedule: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """`table[env, schedule[t[env]]]` for every env: `[N]` from `table [N, C]`, `schedule [H + 1]`, `t [N]`."""
    return table.gather(1, schedule.index_select(0, t).unsqueeze(1)).squeeze(1)
