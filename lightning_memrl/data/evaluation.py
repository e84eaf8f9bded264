"""Greedy evaluation episodes."""

from __future__ import annotations

import math

import torch

from lightning_memrl.data.policy import RecurrentPolicy
from lightning_memrl.envs.base import VectorTask


@torch.no_grad()
def evaluate(
    policy: RecurrentPolicy,
    env: VectorTask,
    num_episodes: int,
    seed: int = 0,
    greedy: bool = True,
    max_steps: int = 1_000_000,
) -> dict[str, torch.Tensor]:
    """Run `num_episodes` episodes (the first `ceil(num_episodes / N)` of each env) from a fresh reset.

    Counting the first episodes of every env, rather than whichever finish first, keeps short
    episodes from being over-represented.

    Returns:
        `success_rate`, `return_mean`, `length_mean` and `episodes`, as 0-dim tensors; no
        `success_rate` when the env reports no success (`env.reports_success` false, e.g. a
        gymnasium env whose info has no `is_success`).
    """
    n, dev = env.num_envs, env.device
    quota = math.ceil(num_episodes / n)
    obs, _ = env.reset(seed=seed)
    state = policy.initial_state(n, dev)
    start = torch.ones(n, dtype=torch.bool, device=dev)
    counted = torch.zeros(n, dtype=torch.long, device=dev)
    ep_return = torch.zeros(n, device=dev)
    ep_length = torch.zeros(n, device=dev)
    total_return = torch.zeros((), device=dev)
    total_length = torch.zeros((), device=dev)
    total_success = torch.zeros((), device=dev)
    for step in range(max_steps):
        act = policy.act(obs, state, start, greedy=greedy)
        obs, reward, term, trunc, info = env.step(act.action)
        state = act.state
        done = term | trunc
        ep_return += reward
        ep_length += 1
        counts = done & (counted < quota)
        total_return += (ep_return * counts).sum()
        total_length += (ep_length * counts).sum()
        total_success += (info["success"] & counts).sum()
        counted += counts.long()
        ep_return *= ~done
        ep_length *= ~done
        start = done
        if step % 64 == 63 and bool((counted >= quota).all()):
            break
    episodes = counted.sum().clamp_min(1)
    metrics = {
        "success_rate": total_success / episodes,
        "return_mean": total_return / episodes,
        "length_mean": total_length / episodes,
        "episodes": counted.sum().float(),
    }
    if not getattr(env, "reports_success", True):
        del metrics["success_rate"]
    return metrics
