"""`memrl bench memory`: acting and training throughput of each memory relative to the bare GRU.

memrl bench memory --device cpu --num-envs 64 --seq-len 128 --output runs/bench_memory.json

For every memory, a `RecurrentPPO` with a GRU controller and that memory is timed on random
observations (no env in the loop, so only the model is measured):
- acting: `act` on `num_envs` observations, one step at a time -> env steps/s;
- training: `evaluate_sequences`-style replay of `[batch_sequences, seq_len]` plus backward -> tokens/s.
Overhead = bare-GRU throughput / memory throughput (1.0 = free, 2.0 = half as fast).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from lightning_memrl.agents.recurrent_ppo import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import PMM, DualTierMiras, KVMemory, Memory, PseudoModeMemory, RingMemory, SlotMemory
from lightning_memrl.specs import EnvSpec
from lightning_memrl.tools.bench.timing import median_seconds

MEMORIES: dict[str, Callable[[int, int], Memory]] = {
    "pseudo_mode": lambda h, n: PseudoModeMemory(h),
    "pmm": lambda h, n: PMM(h),
    "slot": lambda h, n: SlotMemory(h),
    "kv": lambda h, n: KVMemory(h, capacity=n),
    "kv_age": lambda h, n: KVMemory(h, capacity=n, age_bias=True),
    "ring": lambda h, n: RingMemory(h, capacity=n),
    "miras": lambda h, n: DualTierMiras(h),
}


def measure(agent: RecurrentPPO, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """Acting env steps/s and training tokens/s of one agent."""
    spec = agent.env_spec
    gen = torch.Generator(device=device).manual_seed(0)
    obs = torch.randn(args.acting_steps, args.num_envs, spec.observation_size, device=device, generator=gen)
    no_reset = torch.zeros(args.num_envs, dtype=torch.bool, device=device)

    def act() -> None:
        state = agent.initial_state(args.num_envs, device)
        for t in range(args.acting_steps):
            state = agent.act(obs[t], state, no_reset, generator=gen).state

    seq_obs = torch.randn(args.batch_sequences, args.seq_len, spec.observation_size, device=device, generator=gen)
    seq_reset = torch.zeros(args.batch_sequences, args.seq_len, dtype=torch.bool, device=device)
    seq_reset[:, 0] = True

    def train() -> None:
        agent.zero_grad(set_to_none=True)
        state = agent.initial_state(args.batch_sequences, device)
        features, _ = agent._features_sequence(seq_obs, state, seq_reset)
        (agent.actor(features).logsumexp(-1).mean() + agent.critic(features).mean()).backward()

    acting = median_seconds(act, device, args.repeats, warmup=1)
    training = median_seconds(train, device, args.repeats, warmup=1)
    return {
        "acting_steps_per_s": args.num_envs * args.acting_steps / acting,
        "training_tokens_per_s": args.batch_sequences * args.seq_len / training,
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="memrl bench memory", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")
    parser.add_argument("--memories", nargs="+", default=list(MEMORIES), help=f"subset of {list(MEMORIES)}")
    parser.add_argument("--hidden-size", type=int, default=128, help="GRU size (= memory query size)")
    parser.add_argument("--num-envs", type=int, default=256, help="envs acted on in parallel")
    parser.add_argument("--acting-steps", type=int, default=64, help="steps per acting measurement")
    parser.add_argument("--seq-len", type=int, default=128, help="training sequence length (and ring capacity)")
    parser.add_argument("--batch-sequences", type=int, default=64, help="sequences per training minibatch")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (the median is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.memories) - set(MEMORIES))
    if unknown:
        raise ConfigError(f"unknown memories {unknown}; choose from {list(MEMORIES)}")
    for name in ("hidden_size", "num_envs", "acting_steps", "seq_len", "batch_sequences", "repeats"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device} but CUDA is not available; use --device cpu")
    spec = EnvSpec(observation_size=9, num_actions=8)  # delayed_cue with 8 cues
    torch.manual_seed(0)
    results: dict[str, dict[str, float]] = {}
    for name in ["gru", *args.memories]:
        memory = MEMORIES[name](args.hidden_size, args.seq_len) if name != "gru" else None
        agent = RecurrentPPO(GRU(args.hidden_size), env_spec=spec, memory=memory).to(device)
        results[name] = measure(agent, args, device)
    base = results["gru"]
    for row in results.values():
        row["acting_overhead"] = base["acting_steps_per_s"] / row["acting_steps_per_s"]
        row["training_overhead"] = base["training_tokens_per_s"] / row["training_tokens_per_s"]
    print(f"{'model':<12} {'act steps/s':>12} {'overhead':>9} {'train tok/s':>12} {'overhead':>9}")
    for name, row in results.items():
        print(
            f"{name:<12} {row['acting_steps_per_s']:>12.0f} {row['acting_overhead']:>8.2f}x "
            f"{row['training_tokens_per_s']:>12.0f} {row['training_overhead']:>8.2f}x"
        )
    report = {"device": str(device), "config": {k: str(v) for k, v in vars(args).items()}, "results": results}
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2))
    return 0
