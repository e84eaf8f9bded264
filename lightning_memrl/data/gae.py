"""Generalized advantage estimation with `terminated` and `truncated` kept apart."""

from __future__ import annotations

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(gamma, lambda) over a rollout, all tensors `[T, N]`.

    Args:
        rewards: reward of step t.
        values: V(s_t) at acting time.
        next_values: V of the observation that follows step t in the same episode: V(s_{t+1}), or,
            where the episode was truncated at t, V(final observation); ignored where terminated.
        terminated: the episode ended at step t (no bootstrap).
        truncated: the episode was cut at step t by a time limit (bootstrap from `next_values`).
        gamma: discount.
        gae_lambda: GAE lambda.

    Returns:
        `(advantages, returns)` with `returns = advantages + values`.
    """
    not_terminated = (~terminated).to(values.dtype)
    continues = (~(terminated | truncated)).to(values.dtype)
    deltas = rewards + gamma * next_values * not_terminated - values
    advantages = torch.empty_like(values)
    running = torch.zeros_like(values[0])
    for t in range(values.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * gae_lambda * continues[t] * running
        advantages[t] = running
    return advantages, advantages + values


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Var(target - predicted) / Var(target); NaN-free (0 when the target is constant)."""
    var_target = target.var()
    return torch.where(var_target > 0, 1 - (target - predicted).var() / var_target.clamp_min(1e-12), 0.0)
