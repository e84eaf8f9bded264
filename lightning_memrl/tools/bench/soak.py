"""Soak benchmark: a long `memrl fit` of a small config, sampling what could grow without bound.

    memrl bench soak --iterations 2000                      # CPU, one thread
    memrl bench soak --iterations 2000 --device cuda        # one GPU
    memrl bench soak --config configs/x.yaml --iterations 500 --sample-every 10 --out soak.jsonl -- --data.num_envs 64

Every `--sample-every` iterations it records the process's resident memory (RSS), the GPU memory
allocated and reserved by torch, the size of every episodic store of the agent (entries, index
entries, tensor MB), open file descriptors and live Python objects, and prints one line. The summary
compares the first sample after `--warmup` iterations with the last: a run that leaks shows it as
growth there (and as a slope per 1,000 iterations). The default config
(`configs/experiments/soak_episodic.yaml`) fills, wraps and rebuilds a FAISS episodic store, checkpoints
every iteration and validates every 50.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "experiments" / "soak_episodic.yaml"
MB = 2**20


@dataclass(frozen=True)
class Sample:
    """What a soak records at one iteration (sizes in MB)."""

    iteration: int
    wall_s: float
    rss_mb: float
    gpu_allocated_mb: float
    gpu_reserved_mb: float
    store_entries: int
    index_entries: int
    store_mb: float
    open_fds: int
    python_objects: int


def rss_mb() -> float:
    """Resident memory of this process now (Linux: /proc; elsewhere the peak, which only rises)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / MB if sys.platform == "darwin" else peak / 1024


def open_fds() -> int:
    """File descriptors this process holds (-1 where the platform does not list them)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(listing):
            return len(os.listdir(listing))
    return -1


def stores(module: torch.nn.Module) -> list[Any]:
    """The `VectorStore`s of the episodic memories in `module`."""
    return [m.store for m in module.modules() if hasattr(m, "store") and hasattr(m.store, "capacity")]


def take_sample(iteration: int, started: float, module: torch.nn.Module, device: torch.device) -> Sample:
    gc.collect()  # count live objects, not garbage waiting for the cycle collector
    found = stores(module)
    store_bytes = sum(t.numel() * t.element_size() for s in found for t in (s.keys, s.values, s.ticks, s.envs))
    cuda = device.type == "cuda"
    return Sample(
        iteration=iteration,
        wall_s=round(time.perf_counter() - started, 2),
        rss_mb=round(rss_mb(), 1),
        gpu_allocated_mb=round(torch.cuda.memory_allocated(device) / MB, 1) if cuda else 0.0,
        gpu_reserved_mb=round(torch.cuda.memory_reserved(device) / MB, 1) if cuda else 0.0,
        store_entries=sum(s.size for s in found),
        index_entries=sum(s.index.ntotal for s in found if s.index is not None),
        store_mb=round(store_bytes / MB, 2),
        open_fds=open_fds(),
        python_objects=len(gc.get_objects()),
    )


class SoakMonitor(L.Callback):
    """Take a `Sample` after the first iteration and every `every` iterations after it.

    Args:
        every: iterations between samples.
        on_sample: called with each sample as it is taken (printing, writing).
    """

    def __init__(self, every: int, on_sample: Callable[[Sample], None] | None = None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.on_sample = every, on_sample
        self.samples: list[Sample] = []
        self._started = time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        done = trainer.current_epoch + 1
        if done == 1 or done % self.every == 0 or done == trainer.max_epochs:
            sample = take_sample(done, self._started, pl_module, pl_module.device)
            self.samples.append(sample)
            if self.on_sample is not None:
                self.on_sample(sample)


def summarize(samples: list[Sample], warmup: int) -> dict[str, Any]:
    """Figures of a soak: each quantity at the first sample at or after `warmup` iterations and at the last,
    their difference, and the RSS slope (least squares, MB per 1,000 iterations) over that span."""
    steady = [s for s in samples if s.iteration >= warmup] or samples[-1:]
    first, last = steady[0], steady[-1]
    summary: dict[str, Any] = {"iterations": last.iteration, "warmup": warmup, "wall_s": last.wall_s}
    for key in ("rss_mb", "gpu_allocated_mb", "gpu_reserved_mb", "store_entries", "index_entries", "open_fds"):
        start, end = getattr(first, key), getattr(last, key)
        summary[key] = {
            "start": start,
            "end": end,
            "growth": round(end - start, 2),
            "max": max(getattr(s, key) for s in steady),
        }
    summary["rss_mb_per_1000_iterations"] = round(
        _slope([s.iteration for s in steady], [s.rss_mb for s in steady]) * 1000, 2
    )
    summary["python_objects"] = {"start": first.python_objects, "end": last.python_objects}
    return summary


def _slope(x: list[float], y: list[float]) -> float:
    if len(x) < 2:
        return 0.0
    mx, my = sum(x) / len(x), sum(y) / len(y)
    var = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / var if var else 0.0


def run_soak(
    configs: list[str],
    iterations: int,
    device: str,
    root: Path,
    every: int,
    extra: Sequence[str] = (),
    on_sample: Callable[[Sample], None] | None = None,
) -> list[Sample]:
    """Fit `configs` for `iterations` iterations on `device` (`cpu` or `cuda`), sampling every `every`."""
    from lightning_memrl.cli import TRAINER_DEFAULTS, MemRLCLI

    args = [arg for path in configs for arg in ("--config", path)]
    args += ["--trainer.max_epochs", str(iterations), "--trainer.max_time", "null"]
    args += ["--trainer.accelerator", "gpu" if device == "cuda" else "cpu", "--trainer.devices", "1"]
    args += ["--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false", *extra]
    monitor = SoakMonitor(every, on_sample)
    cli = MemRLCLI(args=args, run=False, trainer_defaults={**TRAINER_DEFAULTS, "callbacks": [monitor]})
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return monitor.samples


def _print_sample(sample: Sample) -> None:
    print(
        f"iteration {sample.iteration:6d}  {sample.wall_s:8.1f} s  RSS {sample.rss_mb:8.1f} MB  "
        f"GPU {sample.gpu_allocated_mb:7.1f} / {sample.gpu_reserved_mb:7.1f} MB  store {sample.store_entries:7d} "
        f"(index {sample.index_entries:7d}, {sample.store_mb:.2f} MB)  fds {sample.open_fds:4d}  "
        f"objects {sample.python_objects:8d}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="memrl bench soak", description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", help=f"config file(s) (default: {DEFAULT_CONFIG.name})")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--sample-every", type=int, default=50, help="iterations between samples")
    parser.add_argument(
        "--warmup", type=int, default=None, help="iterations before the reference sample (default 10%%)"
    )
    parser.add_argument("--root", default="runs/soak", help="log dir of the run")
    parser.add_argument("--out", default=None, help="write the samples and the summary as JSON lines here")
    parser.add_argument("overrides", nargs="*", help="extra memrl fit arguments, after --")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warmup = args.warmup if args.warmup is not None else max(args.sample_every, args.iterations // 10)
    root = Path(args.root) / time.strftime("%Y%m%d-%H%M%S")
    configs = args.config or [str(DEFAULT_CONFIG)]
    print(
        f"memrl bench soak: {args.iterations} iterations of {', '.join(configs)} on {args.device} "
        f"({args.threads} thread{'s' if args.threads != 1 else ''}), logs in {root}",
        flush=True,
    )
    samples = run_soak(configs, args.iterations, args.device, root, args.sample_every, args.overrides, _print_sample)
    summary = summarize(samples, warmup)
    rss = summary["rss_mb"]
    print(
        f"soak: {summary['iterations']} iterations in {summary['wall_s']:.0f} s; RSS {rss['start']:.1f} MB at "
        f"iteration {warmup} -> {rss['end']:.1f} MB (growth {rss['growth']:+.1f} MB, "
        f"{summary['rss_mb_per_1000_iterations']:+.2f} MB per 1,000 iterations); GPU allocated "
        f"{summary['gpu_allocated_mb']['start']:.1f} -> {summary['gpu_allocated_mb']['end']:.1f} MB, reserved "
        f"{summary['gpu_reserved_mb']['start']:.1f} -> {summary['gpu_reserved_mb']['end']:.1f} MB; store entries "
        f"{summary['store_entries']['start']} -> {summary['store_entries']['end']} "
        f"(max {summary['store_entries']['max']}); "
        f"open fds {summary['open_fds']['start']} -> {summary['open_fds']['end']}"
    )
    if args.out:
        with open(args.out, "a") as out:
            for sample in samples:
                out.write(json.dumps(asdict(sample)) + "\n")
            out.write(json.dumps({"summary": summary, "device": args.device, "configs": configs}) + "\n")
    return 0
