"""`memrl suite table`: one line per cell (task, difficulty, controller) of a results file.

    memrl suite table --results runs/suites/memory/results.jsonl [--metric success] [--format markdown]

Each line gives the seeds recorded, the metric's mean +- std and range over them, the env steps and wall
time of the runs, and, where the runs walked a curriculum (`TaskCurriculum`), the stage they got to
(`curriculum_stage` of `curriculum_stages`), how many reached the task's target success, and the env steps
and training wall time they took to get there (`env_steps_to_target`, `wall_s_to_target`); `-` where the
runs recorded none of it.
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
    header = [
        "task", "difficulty", "controller", "seeds", metric, "range", "env steps", "wall s",
        "stage", "to target", "wall s to target",
    ]  # fmt: skip
    rows = [header]
    for cell, runs in sorted(latest_per_seed(records).items()):
        values = [float(r[metric]) for r in runs if r.get(metric) is not None]
        stat = stats.get(cell)
        rows.append(
            [
                *cell,
                str(len(runs)),
                f"{stat.mean:.3f} +- {stat.std:.3f}" if stat else "-",
                f"{min(values):.3f}-{max(values):.3f}" if values else "-",
                _span([r["env_steps"] for r in runs], _millions),
                _span([r["wall_s"] for r in runs], _seconds),
                *_curriculum_columns(runs),
            ]
        )
    return rows


def _curriculum_columns(runs: list[dict[str, Any]]) -> list[str]:
    """`stage`, `to target` and `wall s to target` of a cell's runs: `-` for runs without a curriculum.

    `stage` is the span of stages reached over the total (`3-5/9`); `to target` how many runs reached the
    target and the span of their env steps to it (`2/3 at 0.41M-0.74M`); `wall s to target` the span of
    their training wall time to it."""
    if not any("env_steps_to_target" in r for r in runs):
        return ["-", "-", "-"]
    stages = [r["curriculum_stage"] for r in runs if r.get("curriculum_stage") is not None]
    totals = {r["curriculum_stages"] for r in runs if r.get("curriculum_stages") is not None}
    stage = f"{_span(stages, str)}/{'|'.join(map(str, sorted(totals)))}" if stages and totals else "-"
    reached = [r for r in runs if r.get("env_steps_to_target") is not None]
    to_target = f"{len(reached)}/{len(runs)}"
    wall = "-"
    if reached:
        to_target += " at " + _span([r["env_steps_to_target"] for r in reached], _millions)
        walls = [r["wall_s_to_target"] for r in reached if r.get("wall_s_to_target") is not None]
        wall = _span(walls, _seconds) if walls else "-"
    return [stage, to_target, wall]


def _millions(steps: float) -> str:
    return f"{steps / 1e6:.2f}M"


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f}"


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
