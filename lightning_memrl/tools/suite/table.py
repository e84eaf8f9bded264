"""`memrl suite table`: one line per cell (task, difficulty, controller) of a results file.

    memrl suite table --results runs/suites/memory/results.jsonl [--metric success] [--format markdown]

Each line gives the seeds recorded, the metric's mean +- std and range over them, the env steps and wall
time of the runs, and, where the runs recorded it, how many reached the task's target success and the env
steps they took to get there (`env_steps_to_target`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.suite.compare import METRICS, Cell, cell_stats
from lightning_memrl.tools.suite.records import read_records


def latest_per_seed(records: list[dict[str, Any]]) -> dict[Cell, list[dict[str, Any]]]:
    """The records of each cell, the later one where a seed was recorded twice."""
    latest: dict[tuple[Cell, Any], dict[str, Any]] = {}
    for record in records:
        latest[((record["task"], record["difficulty"], record["controller"]), record.get("seed"))] = record
    cells: dict[Cell, list[dict[str, Any]]] = {}
    for (cell, _), record in latest.items():
        cells.setdefault(cell, []).append(record)
    return cells


def table_rows(records: list[dict[str, Any]], metric: str = "success") -> list[list[str]]:
    """Header and one row per cell, sorted by task, difficulty, controller."""
    stats = cell_stats(records, metric)
    header = ["task", "difficulty", "controller", "seeds", metric, "range", "env steps", "wall s", "to target"]
    rows = [header]
    for cell, runs in sorted(latest_per_seed(records).items()):
        values = [float(r[metric]) for r in runs if r.get(metric) is not None]
        stat = stats.get(cell)
        reached = [r["env_steps_to_target"] for r in runs if r.get("env_steps_to_target") is not None]
        to_target = "-"
        if any("env_steps_to_target" in r for r in runs):
            to_target = f"{len(reached)}/{len(runs)}"
            if reached:
                to_target += f" at {_millions(min(reached))}-{_millions(max(reached))}"
        rows.append(
            [
                *cell,
                str(len(runs)),
                f"{stat.mean:.3f} +- {stat.std:.3f}" if stat else "-",
                f"{min(values):.3f}-{max(values):.3f}" if values else "-",
                _span([r["env_steps"] for r in runs], _millions),
                _span([r["wall_s"] for r in runs], lambda s: f"{s:.0f}"),
                to_target,
            ]
        )
    return rows


def _millions(steps: float) -> str:
    return f"{steps / 1e6:.2f}M"


def _span(values: list[float], fmt) -> str:
    low, high = min(values), max(values)
    return fmt(low) if fmt(low) == fmt(high) else f"{fmt(low)}-{fmt(high)}"


def render(rows: list[list[str]], fmt: str = "text") -> str:
    """Aligned text or a Markdown table."""
    if fmt == "markdown":
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def main(argv: Sequence[str]) -> int:
    """Print the table of a results file."""
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="memrl suite table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, help="JSON-lines results file of `memrl suite`")
    parser.add_argument("--metric", default="success", choices=METRICS, help="record field summarised")
    parser.add_argument("--format", default="text", choices=("text", "markdown"))
    opts = parser.parse_args(argv)
    records = read_records(opts.results)
    if not records:
        raise ConfigError(f"no records in {opts.results}; run `memrl suite --config ... --results {opts.results}`")
    print(render(table_rows(records, opts.metric), opts.format))
    return 0
