"""`memrl suite plot`: PNG figures of a suite's results.

    memrl suite plot --results runs/suites/standard/results.jsonl [--logs runs/suites/standard] --out plots/

- `learning_curves.png`: per task and difficulty, the training success rate (`rollout/success_rate`)
  against env steps (`time/env_steps`), read from each run's TensorBoard event files; one line per
  run, one colour per controller, the task's chance level dashed.
- `success_vs_horizon.png`: per task, the final evaluation success (mean +- std over seeds) against
  the horizon of each difficulty, one line per controller.

Needs matplotlib (`pip install 'lightning-memrl[plot]'`).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_utilities.core.imports import RequirementCache

from lightning_memrl.envs.registry import DIFFICULTIES, get_task_spec
from lightning_memrl.errors import ConfigError, MissingDependencyError
from lightning_memrl.tools.suite.records import read_records

SUCCESS_TAG = "rollout/success_rate"
STEPS_TAG = "time/env_steps"
_MATPLOTLIB = RequirementCache("matplotlib")


def _pyplot() -> Any:
    if not _MATPLOTLIB:
        raise MissingDependencyError(
            f"memrl suite plot needs matplotlib ({_MATPLOTLIB.message}); install the extra: "
            "pip install 'lightning-memrl[plot]'"
        )
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def learning_curve(log_dir: str | Path) -> tuple[list[float], list[float]]:
    """`(env_steps, success_rate)` per PPO iteration from the TensorBoard event files in `log_dir`
    (empty lists when it holds none)."""
    if not Path(log_dir).is_dir():
        return [], []
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags().get("scalars", []))
    if not {SUCCESS_TAG, STEPS_TAG} <= tags:
        return [], []
    steps = {e.step: e.value for e in accumulator.Scalars(STEPS_TAG)}
    points = sorted((steps[e.step], e.value) for e in accumulator.Scalars(SUCCESS_TAG) if e.step in steps)
    return [p[0] for p in points], [p[1] for p in points]


def _chance(task: str, difficulty: str) -> float | None:
    try:
        return get_task_spec(task).chance_level(difficulty=difficulty)
    except (ConfigError, TypeError, ValueError):
        return None


def _grid(plt: Any, panels: int, width: float = 4.2, height: float = 3.0) -> tuple[Any, list[Any]]:
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def _colors(plt: Any, controllers: list[str]) -> dict[str, Any]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(controllers)}


def _order(difficulty: str) -> int:
    return DIFFICULTIES.index(difficulty) if difficulty in DIFFICULTIES else len(DIFFICULTIES)


def plot_learning_curves(records: list[dict[str, Any]], out: Path, logs: Path | None = None) -> Path | None:
    """Write `learning_curves.png`; None when no run has event files with both tags."""
    plt = _pyplot()
    curves = []
    for record in records:
        log_dir = logs / record["run_id"] if logs is not None else Path(record["log_dir"])
        steps, success = learning_curve(log_dir)
        if steps:
            curves.append((record, steps, success))
    if not curves:
        return None
    cells = sorted({(r["task"], r["difficulty"]) for r, _, _ in curves}, key=lambda c: (c[0], _order(c[1])))
    colors = _colors(plt, sorted({r["controller"] for r, _, _ in curves}))
    fig, axes = _grid(plt, len(cells))
    for ax, (task, difficulty) in zip(axes, cells, strict=True):
        labelled = set()
        for record, steps, success in curves:
            if (record["task"], record["difficulty"]) != (task, difficulty):
                continue
            name = record["controller"]
            label = None if name in labelled else name
            labelled.add(name)
            ax.plot([s / 1e6 for s in steps], success, color=colors[name], alpha=0.8, lw=1.2, label=label)
        chance = _chance(task, difficulty)
        if chance is not None:
            ax.axhline(chance, color="grey", ls="--", lw=0.8, label="chance")
        ax.set_title(f"{task} ({difficulty})", fontsize=10)
        ax.set_xlabel("env steps (M)")
        ax.set_ylabel("rollout success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = out / "learning_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_success_vs_horizon(records: list[dict[str, Any]], out: Path) -> Path | None:
    """Write `success_vs_horizon.png`; None when no record has a horizon."""
    plt = _pyplot()
    latest = {(r["task"], r["difficulty"], r["controller"], r["seed"]): r for r in records if r.get("horizon")}
    if not latest:
        return None
    tasks = sorted({k[0] for k in latest})
    colors = _colors(plt, sorted({k[2] for k in latest}))
    fig, axes = _grid(plt, len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        ticks: set[int] = set()
        for controller, color in colors.items():
            by_horizon: dict[int, list[float]] = {}
            for (t, _, c, _), record in latest.items():
                if (t, c) == (task, controller):
                    by_horizon.setdefault(int(record["horizon"]), []).append(float(record["success"]))
            if not by_horizon:
                continue
            horizons = sorted(by_horizon)
            ticks.update(horizons)
            means = [statistics.fmean(by_horizon[h]) for h in horizons]
            stds = [statistics.stdev(by_horizon[h]) if len(by_horizon[h]) > 1 else 0.0 for h in horizons]
            ax.errorbar(horizons, means, yerr=stds, color=color, marker="o", capsize=3, label=controller)
        ax.set_xscale("log")
        ax.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])  # the horizons run, not powers of 10
        ax.minorticks_off()
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("horizon (steps)")
        ax.set_ylabel("final success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "success_vs_horizon.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str]) -> int:
    """`memrl suite plot`: write the PNGs and print their paths."""
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="memrl suite plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, help="JSON-lines results of `memrl suite`")
    parser.add_argument("--logs", help="the suite's root_dir, when the runs moved (default: each record's log_dir)")
    parser.add_argument("--out", required=True, help="directory for the PNG files")
    opts = parser.parse_args(argv)
    records = read_records(opts.results)
    if not records:
        raise ConfigError(f"no records in {opts.results}; run `memrl suite --config ... --results {opts.results}`")
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(opts.logs) if opts.logs else None
    written = [p for p in (plot_learning_curves(records, out, logs), plot_success_vs_horizon(records, out)) if p]
    if not written:
        print("memrl suite plot: nothing to plot (no event files with rollout/success_rate, no horizons)")
        return 1
    for path in written:
        print(f"memrl suite plot: wrote {path}")
    return 0
