"""`memrl bench controllers`: training and acting throughput of every controller.

For each controller, hidden size and sequence length it measures
- train: tokens/s of `forward_sequence` + backward on `[B, T, hidden]` (resets at 1% of steps);
- act: env-steps/s of `forward_step` under `no_grad` (B rows per step, state carried).

    memrl bench controllers                                    # hidden 128/256, T 128/1024, B 256, cpu
    memrl bench controllers --batch 32 --seq-len 128 --hidden 64 --controllers gru mamba2
    memrl bench controllers --device cuda --mamba-backend torch --json runs/bench_torch.json

Prints a table and writes the rows as JSON (`--json`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from lightning_memrl.callbacks.results import accelerator_name
from lightning_memrl.controllers import (
    GRU,
    LSTM,
    Controller,
    CyborgFusion,
    CyborgHybrid,
    HybridMambaAttention,
    Mamba2,
    PseudoMamba,
    Transformer,
)
from lightning_memrl.controllers.base import kernels_ran
from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.bench.timing import median_seconds


def controller_factories(
    mamba_backend: str, context: int, gru_fused_scan: bool | None = None
) -> dict[str, Callable[[int], Controller]]:
    """Name -> `hidden_size -> Controller` for every benchmarked controller."""
    return {
        "gru": lambda h: GRU(hidden_size=h, fused_scan=gru_fused_scan),
        "lstm": lambda h: LSTM(hidden_size=h),
        "mamba2": lambda h: Mamba2(hidden_size=h, backend=mamba_backend),
        "transformer": lambda h: Transformer(hidden_size=h, context=context),
        "pseudo_mamba": lambda h: PseudoMamba(hidden_size=h),
        "hybrid_mamba_attention": lambda h: HybridMambaAttention(hidden_size=h, context=context, backend=mamba_backend),
        "cyborg_hybrid": lambda h: CyborgHybrid(hidden_size=h, backend=mamba_backend),
        "cyborg_fusion": lambda h: CyborgFusion(hidden_size=h, backend=mamba_backend),
    }


def measure(
    ctl: Controller, batch: int, seq_len: int, act_steps: int, device: torch.device, repeats: int
) -> dict[str, float]:
    """`{"train_tokens_per_s", "act_steps_per_s"}` of one controller."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, seq_len, ctl.input_size, generator=gen).to(device)
    reset = (torch.rand(batch, seq_len, generator=gen) < 0.01).to(device)
    state = ctl.initial_state(batch, device)

    def train() -> None:
        ctl.zero_grad(set_to_none=True)
        y, _ = ctl.forward_sequence(x, state, reset)
        y.float().square().mean().backward()

    x_step = x[:, 0]
    no_reset = torch.zeros(batch, dtype=torch.bool, device=device)

    @torch.no_grad()
    def act() -> None:
        s = state
        for _ in range(act_steps):
            _, s = ctl.forward_step(x_step, s, no_reset)

    train_s = median_seconds(train, device, repeats)
    act_s = median_seconds(act, device, repeats)
    return {"train_tokens_per_s": batch * seq_len / train_s, "act_steps_per_s": batch * act_steps / act_s}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(allow_abbrev=False, prog="memrl bench controllers", description=__doc__.split("\n")[0])
    p.add_argument("--controllers", nargs="+", default=None, help="names to run (default: all)")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 256])
    p.add_argument("--seq-len", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--act-steps", type=int, default=32, help="forward_step calls per acting measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--mamba-backend", default="auto", choices=["auto", "torch", "mamba_ssm"])
    p.add_argument("--context", type=int, default=256, help="attention window of the Transformer and hybrid")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on CPU")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    factories = controller_factories(args.mamba_backend, args.context)
    names = args.controllers or list(factories)
    unknown = sorted(set(names) - set(factories))
    if unknown:
        raise ConfigError(f"unknown controllers {unknown}; choose from {sorted(factories)}")
    rows = []
    print(f"device {accelerator_name(device)}, batch {args.batch}, threads {torch.get_num_threads()}")
    print(f"{'controller':<24}{'hidden':>7}{'T':>6}{'train tok/s':>14}{'act steps/s':>14}{'tok/s vs gru':>14}  ran")
    for hidden in args.hidden:
        for seq_len in args.seq_len:
            gru_rate = None
            for name in names:
                torch.manual_seed(0)
                ctl = factories[name](hidden).to(device)
                result = measure(ctl, args.batch, seq_len, args.act_steps, device, args.repeats)
                if name == "gru":
                    gru_rate = result["train_tokens_per_s"]
                ratio = result["train_tokens_per_s"] / gru_rate if gru_rate else float("nan")
                ran = kernels_ran(ctl) or {"controller": "pytorch"}
                row = {
                    "controller": name,
                    "hidden": hidden,
                    "seq_len": seq_len,
                    "batch": args.batch,
                    "device": accelerator_name(device),
                    "ran": ran,
                    **result,
                    "train_vs_gru": ratio,
                }
                rows.append(row)
                print(
                    f"{name:<24}{hidden:>7}{seq_len:>6}{result['train_tokens_per_s']:>14,.0f}"
                    f"{result['act_steps_per_s']:>14,.0f}{ratio:>14.2f}  "
                    + ", ".join(f"{kind} {kernel}" for kind, kernel in ran.items())
                )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
        print(f"wrote {args.json}")
    return 0
