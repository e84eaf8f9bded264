"""Shared helpers of the controller tests: random carried states and step-by-step runs."""

from __future__ import annotations

import torch


def random_state(state, gen: torch.Generator):
    """A random but valid state of the same structure: KV caches get 0/1 validity and integer times."""
    if isinstance(state, dict) and "valid" in state:
        return {
            "key": torch.randn(state["key"].shape, generator=gen),
            "value": torch.randn(state["value"].shape, generator=gen),
            "valid": (torch.rand(state["valid"].shape, generator=gen) < 0.6).float(),
            "time": torch.randint(0, 500, state["time"].shape, generator=gen).float(),
        }
    if isinstance(state, dict):
        return {k: random_state(v, gen) for k, v in state.items()}
    if isinstance(state, tuple | list):
        return type(state)(random_state(s, gen) for s in state)
    return torch.randn(state.shape, generator=gen)


def run_steps(ctl, x: torch.Tensor, state, reset: torch.Tensor):
    """`forward_step` over every step of `x [B, T, D]`: `(y [B, T, H], final state)`."""
    ys = []
    for t in range(x.shape[1]):
        y, state = ctl.forward_step(x[:, t], state, reset[:, t])
        ys.append(y)
    return torch.stack(ys, 1), state
