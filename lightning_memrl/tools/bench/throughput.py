"""End-to-end training throughput: env steps per second of recurrent PPO through Lightning.

    memrl bench throughput --num-envs 256 --hidden 128 --iterations 8
    memrl bench throughput --device cuda --num-envs 4096 --json out.json
    memrl bench throughput --device cuda --devices 2 --num-envs 16384   # DDP, envs per GPU
    memrl bench throughput --device cuda --controller mamba2 --mamba-backend mamba_ssm --horizon 1000 \
        --rollout-steps 1024 --seq-len 1024 --num-envs 1024
    memrl bench throughput --device cuda --num-envs 4096 --memory kv_age --cuda-graphs off on
    memrl bench throughput --config configs/models/memories/kv_lag.yaml --controller lightning_memrl.controllers.LSTM

Times whole PPO iterations (collection + GAE + update epochs, in `lightning.Trainer.fit`) after
warm-up iterations, and reports the share of time spent collecting (device time: synchronized), and what
ran: the agent, whether acting ran as a CUDA graph (`--cuda-graphs`, each value one run), the device. The
controller and memory come from names, config files or class paths (see `agent_parts`). With `--devices N`
the fit runs under Lightning DDP (gloo processes on CPU): every rank collects its own `num_envs` envs, the
figure counts the env steps of all ranks, and only rank 0 prints and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.callbacks.results import accelerator_name
from lightning_memrl.cli import float32_matmul_precision
from lightning_memrl.controllers.base import kernels_ran
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.tools.bench.agent_parts import agent_parts
from lightning_memrl.tools.bench.controllers import controller_factories
from lightning_memrl.tools.bench.timing import synchronize


@contextmanager
def _profiled(rows: int, device: str) -> Iterator[list[str]]:
    """With `rows` > 0, profile the context and leave the top `rows` ops (by CUDA time on a GPU, else by self CPU
    time) as a table in the yielded list; otherwise do nothing."""
    table: list[str] = []
    if rows <= 0:
        yield table
        return
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        yield table
    sort_by = "cuda_time_total" if cuda else "self_cpu_time_total"
    table.append(prof.key_averages().table(sort_by=sort_by, row_limit=rows, max_name_column_width=60))


class _IterationTimer(L.Callback):
    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.collect: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize(pl_module.device)
        self.starts.append(time.perf_counter())
        self._collect_before = trainer.datamodule.collect_seconds

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize(pl_module.device)
        self.ends.append(time.perf_counter())
        self.collect.append(trainer.datamodule.collect_seconds - self._collect_before)


def run(
    num_envs: int = 256,
    hidden: int = 128,
    rollout_steps: int = 128,
    seq_len: int = 128,
    num_minibatches: int = 4,
    update_epochs: int = 4,
    iterations: int = 6,
    warmup: int = 2,
    device: str = "cpu",
    precision: str = "32-true",
    horizon: int = 50,
    controller: str | None = "gru",
    mamba_backend: str = "auto",
    fused_scan: bool | None = None,
    devices: int = 1,
    memory: str | None = None,
    configs: Sequence[str] = (),
    cuda_graphs: str = "auto",
    matmul_precision: str | None = None,
    profile: int = 0,
) -> dict[str, Any] | None:
    """Train recurrent PPO on delayed_cue for `warmup + iterations` and time the last `iterations`.

    `controller` names one of `memrl bench controllers`' controllers (gru, lstm, mamba2, ...) or a class
    path; `memory` a memory config name, file or class path; `configs` config files whose `model:` parts
    (controller, memory, memory flags) are used (see `agent_parts`). `fused_scan` is the GRU's requested
    scan (Triton kernels on CUDA, eager, or automatic); `cuda_graphs` the data module's switch;
    `matmul_precision` PyTorch's float32 matmul precision (`high`: TF32 on GPUs that have it; None: as set);
    `profile` > 0 runs the whole fit under `torch.profiler` and returns its top `profile` ops by device time
    (self CPU time on a CPU) as `profile` (the profiler's overhead makes that run's figures incomparable). The result
    says what ran: `ran` (each choosing controller's kernel, e.g. `{"GRU": "triton"}`, and `acting`: `cuda
    graph` or `eager (why)`) and `device` (its name).
    `devices > 1` trains under DDP with `num_envs` envs per device; returns None on ranks other than 0.
    """
    factories = controller_factories(mamba_backend, context=seq_len, gru_fused_scan=fused_scan)
    L.seed_everything(0, verbose=False)
    ctl, mem, flags, name = agent_parts(controller, memory, configs, hidden, factories)
    steps = num_envs * rollout_steps
    dm = RolloutDataModule(
        env="delayed_cue",
        env_kwargs={"horizon": horizon},
        num_envs=num_envs,
        rollout_steps=rollout_steps,
        seq_len=seq_len,
        num_minibatches=num_minibatches,
        update_epochs=update_epochs,
        cuda_graphs=cuda_graphs,
    )
    agent = RecurrentPPO(ctl, env_spec=dm.env_spec, memory=mem, **flags)
    timer = _IterationTimer()
    trainer = L.Trainer(
        max_epochs=warmup + iterations,
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        precision=precision,
        gradient_clip_val=0.5,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with float32_matmul_precision(matmul_precision), _profiled(profile, device) as table:
        trainer.fit(agent, dm)
    if trainer.global_rank != 0:
        return None
    steps *= trainer.world_size
    wall = sum(e - s for s, e in zip(timer.starts[warmup:], timer.ends[warmup:], strict=True))
    collect = sum(timer.collect[warmup:])
    return {
        "benchmark": "throughput",
        "controller": f"{name.split(' + ')[0]}-{ctl.output_size}",
        "agent": name,
        "fused_scan": fused_scan,
        "mamba_backend": mamba_backend,
        "cuda_graphs": cuda_graphs,
        "ran": {**(kernels_ran(agent) or {"controller": "pytorch"}), "acting": dm.acting.get("collect")},
        "horizon": horizon,
        "num_envs": num_envs,
        "devices": trainer.world_size,
        "rollout_steps": rollout_steps,
        "seq_len": seq_len,
        "minibatches": num_minibatches,
        "update_epochs": update_epochs,
        "precision": precision,
        "matmul_precision": matmul_precision or torch.get_float32_matmul_precision(),
        **({"profile": table[0]} if profile else {}),
        "device": _device_name(trainer.strategy.root_device),
        "torch_threads": torch.get_num_threads(),
        "iterations_timed": iterations,
        "env_steps_per_s": round(steps * iterations / wall, 1),
        "collect_share": round(collect / wall, 3),
        "train_share": round(1 - collect / wall, 3),
        "seconds_per_iteration": round(wall / iterations, 4),
        "peak_gpu_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.startswith("cuda") else None,
        "date": time.strftime("%Y-%m-%d"),
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return accelerator_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False, prog="memrl bench throughput", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--num-envs", type=int, nargs="+", default=[256])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument(
        "--controller",
        default=None,
        help="a controller of `memrl bench controllers` or a class path (default: the configs', else gru)",
    )
    parser.add_argument("--memory", help="a memory: a name of configs/models/memories, a config file or a class path")
    parser.add_argument(
        "--config", action="append", default=[], help="a config file whose model section is used (repeatable)"
    )
    parser.add_argument(
        "--cuda-graphs",
        nargs="+",
        choices=("auto", "on", "off"),
        default=["auto"],
        help="acting as CUDA graphs; several values run one after the other (e.g. off on)",
    )
    parser.add_argument("--mamba-backend", default="auto", choices=("auto", "torch", "mamba_ssm"))
    parser.add_argument("--horizon", type=int, default=50, help="delayed_cue episode length")
    parser.add_argument(
        "--fused-scan", choices=("auto", "on", "off"), default="auto", help="GRU scan: Triton kernels on CUDA or eager"
    )
    parser.add_argument("--rollout-steps", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--minibatches", type=int, default=4)
    parser.add_argument("--update-epochs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--devices", type=int, default=1, help="GPUs (or CPU processes); more than 1 trains under DDP, --num-envs each"
    )
    parser.add_argument("--precision", default="32-true")
    parser.add_argument(
        "--matmul-precision",
        choices=("highest", "high", "medium"),
        help="torch.set_float32_matmul_precision for the fit (high: TF32 matmuls on GPUs that have them); default: "
        "as set",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="ROWS",
        help="profile each fit (torch.profiler) and print its top ROWS ops; the figures of a profiled run are slower",
    )
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    if args.devices > 1 and len(args.num_envs) > 1:
        parser.error("with --devices > 1 give one --num-envs per run (each DDP fit starts its own processes)")
    results = []
    for num_envs, cuda_graphs in ((n, g) for n in args.num_envs for g in args.cuda_graphs):
        result = run(
            num_envs=num_envs,
            hidden=args.hidden,
            rollout_steps=args.rollout_steps,
            seq_len=args.seq_len,
            num_minibatches=args.minibatches,
            update_epochs=args.update_epochs,
            iterations=args.iterations,
            warmup=args.warmup,
            device=args.device,
            precision=args.precision,
            horizon=args.horizon,
            controller=args.controller,
            mamba_backend=args.mamba_backend,
            fused_scan={"auto": None, "on": True, "off": False}[args.fused_scan],
            devices=args.devices,
            memory=args.memory,
            configs=args.config,
            cuda_graphs=cuda_graphs,
            matmul_precision=args.matmul_precision,
            profile=args.profile,
        )
        if result is None:  # a DDP rank other than 0
            return 0
        results.append(result)
        ran = ", ".join(f"{name} {kernel}" for name, kernel in result["ran"].items())
        ran += f", float32 matmuls {result['matmul_precision']}"
        print(
            f"{result['agent']} [ran: {ran}] num_envs={num_envs:>6} x {args.devices} {result['device']}: "
            f"{result['env_steps_per_s']:>12,.0f} env-steps/s end to end "
            f"(collect {result['collect_share']:.0%}, train {result['train_share']:.0%}, "
            f"{result['seconds_per_iteration']:.3f} s/iteration)"
        )
        if args.profile:
            print(f"profile of the whole fit (warm-up included; the profiler slows it):\n{result['profile']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0
