"""Learning benchmark: run one config over several seeds and report success, env steps and wall time.

    memrl bench learning --config configs/quickstart.yaml --seeds 0 1 2 --stop-at 0.99

Each seed is a `memrl fit` (with an EarlyStopping on `val/success_rate` when `--stop-at` is given, as in
`configs/callbacks/stop_at_success.yaml`, which ends the run at the first greedy evaluation reaching that
success rate); figures come from each run's
`results.json`. Results are appended as JSON lines to `--out`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from lightning_memrl.callbacks.results import ResultsJson


def stop_stack(stop_at: float) -> str:
    """A callback stack (YAML) ending the run at the first greedy evaluation reaching `stop_at` success."""
    return (
        "trainer:\n  callbacks+:\n    - class_path: lightning.pytorch.callbacks.EarlyStopping\n      init_args:\n"
        f"        monitor: val/success_rate\n        mode: max\n        stopping_threshold: {stop_at}\n"
        "        patience: 1000000\n        check_on_train_epoch_end: false\n"
    )


def run_seed(config: list[str], seed: int, root: Path, stop_at: float | None, extra: list[str]) -> dict:
    from lightning_memrl.cli import MemRLCLI

    args = ["fit"]
    for path in config:
        args += ["--config", path]
    if stop_at is not None:
        stack = root / "stop_at_success.yaml"
        stack.parent.mkdir(parents=True, exist_ok=True)
        stack.write_text(stop_stack(stop_at))
        args += ["--config", str(stack)]
    args += ["--data.seed", str(seed), "--trainer.default_root_dir", str(root / f"seed{seed}")]
    args += ["--trainer.enable_progress_bar", "false", *extra]
    cli = MemRLCLI(args=args)
    results = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ResultsJson))
    record = json.loads(results.path.read_text())
    record.update(seed=seed, config=config, overrides=extra, iterations=cli.trainer.current_epoch)
    return record


def _score(record: dict) -> str:
    """Success where the env reports it (built-in tasks), else the greedy return (most gym envs)."""
    if record["success_rate"] is not None:
        return f"success {record['success_rate']:.3f}"
    return f"return {record['return_mean']:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, prog="memrl bench learning", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", action="append", required=True, help="config file(s), as for memrl fit")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stop-at", type=float, default=None, help="stop a run at this greedy success")
    parser.add_argument("--root", default="runs/learning")
    parser.add_argument("--out", default=None, help="append JSON lines here")
    parser.add_argument("overrides", nargs="*", help="extra memrl fit arguments, after --")
    args = parser.parse_args(argv)
    root = Path(args.root) / time.strftime("%Y%m%d-%H%M%S")
    records = []
    for seed in args.seeds:
        record = run_seed(args.config, seed, root, args.stop_at, args.overrides)
        records.append(record)
        print(
            f"seed {seed}: {_score(record)} after {record['env_steps']:,} env steps, "
            f"{record['wall_s']:.0f} s ({record['sps']:,.0f} env-steps/s)"
        )
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(record) + "\n")
    key = "success_rate" if all(r["success_rate"] is not None for r in records) else "return_mean"
    scores = [r[key] for r in records]
    steps = [r["env_steps"] for r in records]
    walls = [r["wall_s"] for r in records]
    spread = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    print(
        f"{len(records)} seeds: {key} {statistics.mean(scores):.3f} +- {spread:.3f}, "
        f"env steps {min(steps):,}-{max(steps):,}, wall {min(walls):.0f}-{max(walls):.0f} s"
    )
    return 0
