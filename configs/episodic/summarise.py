"""Markdown table of the episodic learning benchmark: one row per run, then mean +- std per arm.

    python configs/episodic/summarise.py runs/episodic/device

Reads `<root>/<arm>/seed<k>/**/results.json` (the newest per run directory, as `memrl fit` writes it).
One arm per directory, in name order: run_device.sh writes `baseline`, `episodic` (global store) and
`episodic_scoped` (episode-scoped reads).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def collect(root: Path) -> list[dict]:
    """One record per `<arm>/seed<k>` directory under `root` that holds a `results.json`."""
    records = []
    for run in sorted(p for p in root.glob("*/seed*") if p.is_dir()):
        found = sorted(run.rglob("results.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            records.append({"arm": run.parent.name, "seed": run.name.removeprefix("seed"), "missing": True})
            continue
        record = json.loads(found[-1].read_text())
        records.append({"arm": run.parent.name, "seed": run.name.removeprefix("seed"), **record})
    return records


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {spread:.3f}"


def table(records: list[dict]) -> str:
    """The markdown table: per run, then per arm (mean +- sample std over the runs that finished)."""
    lines = [
        "| arm | seed | final greedy success | return | env steps | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        if r.get("missing"):
            lines.append(f"| {r['arm']} | {r['seed']} | no results.json (see its log.txt) | | | |")
            continue
        success = "n/a" if r["success_rate"] is None else f"{r['success_rate']:.3f}"
        figures = f"{success} | {r['return_mean']:.3f} | {r['env_steps']:,} | {r['wall_s']:.0f}"
        lines.append(f"| {r['arm']} | {r['seed']} | {figures} |")
    for arm in dict.fromkeys(r["arm"] for r in records):
        done = [r for r in records if r["arm"] == arm and not r.get("missing") and r["success_rate"] is not None]
        if done:
            success = _mean_std([r["success_rate"] for r in done])
            ret = _mean_std([r["return_mean"] for r in done])
            steps = f"{min(r['env_steps'] for r in done):,}-{max(r['env_steps'] for r in done):,}"
            wall = f"{min(r['wall_s'] for r in done):.0f}-{max(r['wall_s'] for r in done):.0f}"
            lines.append(f"| **{arm}** | mean of {len(done)} | {success} | {ret} | {steps} | {wall} |")
    return "\n".join(lines)


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/episodic/device")
    print(table(collect(root)))
