"""`memrl bench envs`: env-only throughput (env-steps/s) of every registered task.

    memrl bench envs [--num-envs 4096] [--device cpu] [--difficulty easy] [--steps N]
                     [--tasks copy_memory,n_back] [--threads 2] [--count-ops] [--json envs.json]

Actions are drawn uniformly in advance (on the task's device), so only `env.step` is timed; one
env-step is one environment advancing one step, so a batch step of N envs counts N. By default the
timed window is at least one horizon long, so the episode resets are part of the measurement.
`--count-ops` also counts, over the same window, the ATen ops per batch step (a device-free proxy
for GPU kernel launches) and the host reads of tensor values per step (device syncs on a GPU).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import torch

from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.registry import DIFFICULTIES, make_task, task_names
from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.bench.op_count import AtenOpCounter
from lightning_memrl.tools.bench.timing import median_seconds


def measure_task(
    name: str,
    *,
    num_envs: int,
    device: torch.device | str = "cpu",
    difficulty: str | None = "easy",
    steps: int | None = None,
    warmup: int = 30,
    seed: int = 0,
) -> dict[str, Any]:
    """Time `steps` batch steps of a registered task under uniform random actions.

    Args:
        name: registry name of the task.
        num_envs: environments stepped together.
        device: device of the task tensors (and of the pre-drawn actions).
        difficulty: difficulty preset (None: the task's defaults).
        steps: timed batch steps (default: the larger of 300 and the task's horizon).
        warmup: untimed batch steps first (allocator and caches warm up).
        seed: seed of the task and of the actions.

    Returns:
        A row: task, difficulty, num_envs, device, steps, seconds and `env_steps_per_s`.
    """
    env, actions, steps = _warmed_up(name, num_envs, device, difficulty, steps, warmup, seed)
    device = env.device

    def timed_steps() -> None:
        for t in range(warmup, warmup + steps):
            env.step(actions[t])

    seconds = median_seconds(timed_steps, device)
    return {
        "task": name,
        "difficulty": difficulty,
        "horizon": env.horizon,
        "num_envs": num_envs,
        "device": str(device),
        "steps": steps,
        "seconds": seconds,
        "env_steps_per_s": steps * num_envs / seconds,
    }


def count_task_ops(
    name: str,
    *,
    num_envs: int,
    device: torch.device | str = "cpu",
    difficulty: str | None = "easy",
    steps: int | None = None,
    warmup: int = 30,
    seed: int = 0,
) -> dict[str, float]:
    """Count the ATen ops and host reads per batch step over the window `measure_task` times.

    Arguments as for `measure_task`. Returns `aten_ops_per_step` (non-view ops: about the kernel
    launches on a GPU) and `host_reads_per_step` (`.item()`-like reads: device syncs on a GPU).
    """
    env, actions, steps = _warmed_up(name, num_envs, device, difficulty, steps, warmup, seed)
    with AtenOpCounter() as counter:
        for t in range(warmup, warmup + steps):
            env.step(actions[t])
    return {"aten_ops_per_step": counter.ops / steps, "host_reads_per_step": counter.host_reads / steps}


def _warmed_up(
    name: str,
    num_envs: int,
    device: torch.device | str,
    difficulty: str | None,
    steps: int | None,
    warmup: int,
    seed: int,
) -> tuple[VectorTask, torch.Tensor, int]:
    """A reset task stepped `warmup` times, its pre-drawn actions `[warmup + steps, N]` and `steps`."""
    env = make_task(name, num_envs, device=device, seed=seed, difficulty=difficulty)
    steps = max(300, env.horizon) if steps is None else steps
    if steps < 1 or warmup < 0:
        raise ConfigError(f"need steps >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    generator = torch.Generator(device=env.device).manual_seed(seed)
    actions = torch.randint(env.num_actions, (warmup + steps, num_envs), device=env.device, generator=generator)
    env.reset(seed=seed)
    for t in range(warmup):
        env.step(actions[t])
    return env, actions, steps


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of `measure_task` rows, throughput in millions of env-steps per second."""
    counted = any("aten_ops_per_step" in row for row in rows)
    header = f"{'task':<24} {'difficulty':<10} {'horizon':>7} {'num_envs':>9} {'device':<8} {'M env-steps/s':>14}"
    lines = [header + (f" {'ops/step':>9} {'host reads/step':>16}" if counted else "")]
    for row in rows:
        line = (
            f"{row['task']:<24} {str(row['difficulty']):<10} {row['horizon']:>7} {row['num_envs']:>9} "
            f"{row['device']:<8} {row['env_steps_per_s'] / 1e6:>14.2f}"
        )
        if counted:
            ops, reads = row.get("aten_ops_per_step", float("nan")), row.get("host_reads_per_step", float("nan"))
            line += f" {ops:>9.2f} {reads:>16.2f}"
        lines.append(line)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="memrl bench envs", description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=4096, help="environments per task (default 4096)")
    parser.add_argument("--device", default="cpu", help="device of the tasks, e.g. cpu or cuda (default cpu)")
    parser.add_argument(
        "--difficulty", nargs="+", default=["easy"], choices=DIFFICULTIES, help="difficulty presets, measured in turn"
    )
    parser.add_argument("--steps", type=int, default=None, help="timed batch steps (default max(300, horizon))")
    parser.add_argument("--warmup", type=int, default=30, help="untimed batch steps per task")
    parser.add_argument("--tasks", default=None, help="comma-separated task names (default: every task)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--count-ops", action="store_true", help="also count ATen ops and host reads per step (untimed pass)"
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments; prints the table, returns the exit status."""
    args = _parser().parse_args(argv)
    names = task_names() if args.tasks is None else [n.strip() for n in args.tasks.split(",") if n.strip()]
    unknown = sorted(set(names) - set(task_names()))
    if unknown:
        raise ConfigError(f"unknown task(s) {unknown}; known tasks: {', '.join(task_names())}")
    if args.num_envs < 1:
        raise ConfigError(f"--num-envs must be >= 1, got {args.num_envs}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    options = {"num_envs": args.num_envs, "device": args.device, "steps": args.steps, "warmup": args.warmup}
    rows = []
    for difficulty in args.difficulty:  # one after another: runs sharing a device would time each other
        for name in names:
            row = measure_task(name, difficulty=difficulty, seed=args.seed, **options)
            if args.count_ops:
                row.update(count_task_ops(name, difficulty=difficulty, seed=args.seed, **options))
            rows.append(row)
    print(format_table(rows))
    if args.json is not None:
        with open(args.json, "w") as handle:
            json.dump({"torch_threads": torch.get_num_threads(), "rows": rows}, handle, indent=2)
        print(f"wrote {args.json}")
    return 0
