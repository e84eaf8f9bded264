"""`memrl suite compare`: mean +- std per cell of two results files, and regressions beyond a tolerance.

    memrl suite compare --results runs/suites/quick/results.jsonl --baseline results/quick.jsonl

A cell is `(task, difficulty, controller)`; its value is the mean over seeds of `--metric` (success
by default; a run recorded twice counts once, the later record). A cell regresses when its mean is
below the baseline's by more than `--tolerance` (absolute). Exit status: 0, or 1 when a cell
regressed (or, with `--strict`, when a baseline cell has no result), so CI can gate on it.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.suite.records import read_records

Cell = tuple[str, str, str]
METRICS = ("success", "return", "env_steps", "wall_s", "sps")


@dataclass(frozen=True)
class Stats:
    """Mean and sample standard deviation over seeds (`std` 0 for one seed)."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} +- {self.std:.3f} (n={self.n})"


@dataclass(frozen=True)
class Row:
    """One line of the comparison table."""

    cell: Cell
    result: Stats | None
    baseline: Stats | None
    status: str  # ok | REGRESSION | improved | missing | new

    @property
    def diff(self) -> float | None:
        if self.result is None or self.baseline is None:
            return None
        return self.result.mean - self.baseline.mean


def cell_stats(records: list[dict[str, Any]], metric: str = "success") -> dict[Cell, Stats]:
    """Per `(task, difficulty, controller)`: the metric's mean and std over seeds (last record per run)."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    latest: dict[tuple[Cell, Any], float] = {}
    for record in records:
        cell = (record["task"], record["difficulty"], record["controller"])
        value = record.get(metric)
        if value is not None:
            latest[(cell, record.get("seed"))] = float(value)
    values: dict[Cell, list[float]] = {}
    for (cell, _), value in latest.items():
        values.setdefault(cell, []).append(value)
    return {
        cell: Stats(statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
        for cell, v in values.items()
    }


def compare(
    results: list[dict[str, Any]],
    baseline: list[dict[str, Any]],
    tolerance: float = 0.05,
    metric: str = "success",
    higher_is_better: bool = True,
) -> list[Row]:
    """The comparison table: one row per cell of either file, sorted by task, difficulty, controller."""
    if tolerance < 0:
        raise ConfigError(f"--tolerance must be >= 0, got {tolerance}")
    ours, theirs = cell_stats(results, metric), cell_stats(baseline, metric)
    sign = 1.0 if higher_is_better else -1.0
    rows = []
    for cell in sorted(ours.keys() | theirs.keys()):
        result, base = ours.get(cell), theirs.get(cell)
        if result is None:
            status = "missing"
        elif base is None:
            status = "new"
        else:
            change = sign * (result.mean - base.mean)
            status = "REGRESSION" if change < -tolerance else "improved" if change > tolerance else "ok"
        rows.append(Row(cell, result, base, status))
    return rows


def render(rows: list[Row], fmt: str = "text", metric: str = "success") -> str:
    """The table as aligned text or as a Markdown table (for the README)."""
    header = ["task", "difficulty", "controller", metric, f"baseline {metric}", "diff", "status"]
    body = [
        [
            *row.cell,
            str(row.result) if row.result else "-",
            str(row.baseline) if row.baseline else "-",
            f"{row.diff:+.3f}" if row.diff is not None and math.isfinite(row.diff) else "-",
            row.status,
        ]
        for row in rows
    ]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *body])


def main(argv: Sequence[str]) -> int:
    """`memrl suite compare`: print the table; 1 on regression (or missing cells with --strict)."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False, prog="memrl suite compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--results", required=True, help="JSON-lines results of the run to check")
    parser.add_argument("--baseline", required=True, help="JSON-lines results to compare against")
    parser.add_argument("--tolerance", type=float, default=0.05, help="allowed drop of a cell's mean (absolute)")
    parser.add_argument("--metric", default="success", choices=METRICS, help="record field compared")
    parser.add_argument("--lower-is-better", action="store_true", help="for metrics such as wall_s or env_steps")
    parser.add_argument("--strict", action="store_true", help="also fail when a baseline cell has no result")
    parser.add_argument("--format", default="text", choices=("text", "markdown"))
    opts = parser.parse_args(argv)
    results, baseline = read_records(opts.results), read_records(opts.baseline)
    if not results:
        raise ConfigError(f"no records in {opts.results}; run `memrl suite --config ... --results {opts.results}`")
    rows = compare(results, baseline, opts.tolerance, opts.metric, higher_is_better=not opts.lower_is_better)
    print(render(rows, opts.format, opts.metric))
    regressed = [r for r in rows if r.status == "REGRESSION"]
    missing = [r for r in rows if r.status == "missing"]
    print(
        f"\n{len(rows)} cells: {len(regressed)} regressed beyond {opts.tolerance}, "
        f"{sum(r.status == 'improved' for r in rows)} improved, {len(missing)} missing, "
        f"{sum(r.status == 'new' for r in rows)} new"
    )
    return 1 if regressed or (opts.strict and missing) else 0
