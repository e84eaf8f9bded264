"""Print the markdown tables of a `configs/memory/run_device.sh` batch from its runs' results.json files.

    python configs/memory/summarize.py runs/memory/device

Reads `<out>/<task>/<config>/seed<k>/**/results.json` (the newest per run) and, where present, the
`curriculum.json` beside it (greedy success every few iterations; the env steps at which success first
reached 0.95 at the full horizon). Prints one row per run, then one per config: mean and spread
(max - min over seeds) of the final success and return, so a gap between configs can be read
against the seed spread.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

TARGET = 0.95


def _newest(paths: list[Path]) -> Path | None:
    return max(paths, key=lambda p: p.stat().st_mtime) if paths else None


def reached_at(curriculum: dict[str, Any], target: float = TARGET) -> int | None:
    """Env steps of the first evaluation at the full horizon with success >= `target` (None: never)."""
    for record in curriculum.get("history", []):
        if record["horizon"] >= curriculum["max_horizon"] and record["success"] >= target:
            return int(record["env_steps"])
    return None


def load_runs(out: Path) -> list[dict[str, Any]]:
    """One dict per `<task>/<config>/seed<k>` run dir under `out` (`results` None where it wrote none)."""
    runs = []
    for seed_dir in sorted(out.glob("*/*/seed*")):
        results = _newest(list(seed_dir.glob("**/results.json")))
        curriculum = _newest(list(seed_dir.glob("**/curriculum.json")))
        run: dict[str, Any] = {
            "task": seed_dir.parent.parent.name,
            "config": seed_dir.parent.name,
            "seed": seed_dir.name.removeprefix("seed"),
            "results": json.loads(results.read_text()) if results else None,
            "reached": None,
        }
        if curriculum:
            run["reached"] = reached_at(json.loads(curriculum.read_text()))
        runs.append(run)
    return runs


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def run_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| task | config | seed | final greedy success | return | env steps | wall s | 0.95 reached at (env steps) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        r = run["results"]
        if r is None:
            lines.append(f"| {run['task']} | {run['config']} | {run['seed']} | no results.json (see fit.log) | | | | |")
            continue
        reached = f"{run['reached']:,}" if run["reached"] is not None else "-"
        lines.append(
            f"| {run['task']} | {run['config']} | {run['seed']} | {_fmt(r.get('success_rate'))} | "
            f"{_fmt(r.get('return_mean'))} | {r['env_steps']:,} | {r['wall_s']:.0f} | {reached} |"
        )
    return lines


def _mean_spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.fmean(values):.3f} ({max(values) - min(values):.3f})"


def config_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| task | config | seeds | success: mean (spread) | return: mean (spread) | env steps (min) |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        if run["results"] is not None:
            groups.setdefault((run["task"], run["config"]), []).append(run["results"])
    for (task, config), results in groups.items():
        success = [r["success_rate"] for r in results if r.get("success_rate") is not None]
        returns = [r["return_mean"] for r in results if r.get("return_mean") is not None]
        steps = min(r["env_steps"] for r in results)
        lines.append(
            f"| {task} | {config} | {len(results)} | {_mean_spread(success)} | {_mean_spread(returns)} | {steps:,} |"
        )
    return lines


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "runs/memory/device")
    runs = load_runs(out)
    if not runs:
        print(f"no run dirs <task>/<config>/seed<k> under {out}")
        return 1
    print("\n".join(run_table(runs)))
    print()
    print("\n".join(config_table(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
