"""`memrl bench mamba2_paths`: Mamba2's fused GPU path against its torch path, and the SSD scan alone.

Forward + backward of `Mamba2.forward_sequence` on `[B, T, hidden]` (resets at 1% of steps, loss the
mean square of the output) with `backend="torch"` and `backend="mamba_ssm"`, the median of `--repeats`
steps after `--warmup` steps; with `--scan`, the same for the SSD scan alone (the torch chunked scan at
chunk 32, its fastest, against mamba_ssm's Triton scan at `--chunk`), at the block's shapes. CUDA with
mamba-ssm only.

    memrl bench mamba2_paths --hidden 128 256            # fp32 matmuls
    memrl bench mamba2_paths --hidden 128 --tf32 --scan --chunk 64
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from lightning_memrl.controllers import Mamba2
from lightning_memrl.errors import ConfigError, MissingDependencyError
from lightning_memrl.ops.ssd import ssd_chunked_scan
from lightning_memrl.ops.ssd_mamba_ssm import mamba_ssm_available, ssd_mamba_ssm
from lightning_memrl.tools.bench.timing import median_seconds


def block_step(backend: str, hidden: int, batch: int, seq_len: int, chunk: int | None) -> Callable[[], None]:
    """One forward + backward of a one-layer Mamba2 on the given backend (`chunk`: the fused path's)."""
    torch.manual_seed(0)
    model = Mamba2(hidden_size=hidden, backend=backend, chunk_size=chunk if backend == "mamba_ssm" else None).cuda()
    x = torch.randn(batch, seq_len, hidden, device="cuda")
    reset = torch.rand(batch, seq_len, device="cuda") < 0.01
    state = model.initial_state(batch, "cuda")

    def step() -> None:
        model.zero_grad(set_to_none=True)
        y, _ = model.forward_sequence(x, state, reset)
        y.float().square().mean().backward()

    return step


def scan_step(fused: bool, block: Mamba2, batch: int, seq_len: int, chunk: int) -> Callable[[], None]:
    """One forward + backward of the SSD scan alone at `block`'s first layer's shapes (`chunk`: the
    fused scan's chunk length; the torch scan uses 32, its fastest)."""
    layer = block.mixers[0]
    heads, head_dim, d_state = layer.num_heads, layer.head_dim, layer.d_state
    gen = torch.Generator(device="cuda").manual_seed(0)

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device="cuda", generator=gen).requires_grad_()

    x, dt_raw = leaf(batch, seq_len, heads, head_dim), leaf(batch, seq_len, heads)
    b, c = leaf(batch, seq_len, d_state), leaf(batch, seq_len, d_state)
    dt_bias, skip = torch.zeros(heads, device="cuda", requires_grad=True), torch.ones(heads, device="cuda")
    a = -torch.rand(heads, device="cuda", generator=gen).add(1.0)
    reset = torch.rand(batch, seq_len, device="cuda", generator=gen) < 0.01
    s0 = torch.zeros(batch, heads, head_dim, d_state, device="cuda")

    def step() -> None:
        if fused:
            y, _ = ssd_mamba_ssm(x, dt_raw, dt_bias, a, b, c, skip, reset, s0, chunk)
        else:
            y, _ = ssd_chunked_scan(x, F.softplus(dt_raw + dt_bias), a, b, c, reset, s0, 32)
            y = torch.addcmul(y, x, skip[:, None])
        y.float().square().mean().backward()

    return step


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(allow_abbrev=False, prog="memrl bench mamba2_paths", description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 256])
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (both paths)")
    p.add_argument("--scan", action="store_true", help="also time the SSD scan alone")
    p.add_argument("--chunk", type=int, default=256, help="SSD chunk length of the fused path (its default 256)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = _parser().parse_args(argv)
    if not torch.cuda.is_available():
        raise ConfigError("memrl bench mamba2_paths compares GPU paths: it needs a CUDA device")
    if not mamba_ssm_available():
        raise MissingDependencyError(
            "memrl bench mamba2_paths needs mamba-ssm's Triton kernels: pip install 'lightning-memrl[gpu]'"
        )
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    tokens = args.batch * args.seq_len
    cuda = torch.device("cuda")

    def median_ms(step: Callable[[], None]) -> float:
        return median_seconds(step, cuda, args.repeats, args.warmup) * 1e3

    print(f"{torch.cuda.get_device_name()}, B={args.batch}, T={args.seq_len}, tf32={args.tf32}")
    for hidden in args.hidden:
        ms = {b: median_ms(block_step(b, hidden, args.batch, args.seq_len, args.chunk)) for b in ("torch", "mamba_ssm")}
        for backend, t in ms.items():
            print(f"Mamba2-{hidden} {backend:<9} {t:8.2f} ms {tokens / t * 1e3:>14,.0f} tokens/s")
        print(f"Mamba2-{hidden} fused / torch: {ms['torch'] / ms['mamba_ssm']:.2f}x")
        if args.scan:
            block = Mamba2(hidden_size=hidden)
            scan = {f: median_ms(scan_step(f, block, args.batch, args.seq_len, args.chunk)) for f in (False, True)}
            print(
                f"SSD scan alone at hidden {hidden}: torch {scan[False]:.2f} ms, mamba_ssm {scan[True]:.2f} ms, "
                f"{scan[False] / scan[True]:.2f}x"
            )
    return 0
