"""The training minibatch: sequences of steps, each replayed from its stored recurrent state."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lightning_memrl.state import State


@dataclass
class SequenceBatch:
    """`S` training sequences of `burn_in + L` steps.

    The first `burn_in` steps of `obs` and `starts` only refresh the recurrent state (no loss, no
    gradient); the loss covers the last `L` steps, to which every other field belongs.

    Attributes:
        obs: `[S, burn_in + L, D]` observations.
        starts: `[S, burn_in + L]` true where a step is the first of an episode.
        states: recurrent state before the first step of `obs`, as stored at acting time (`[S, ...]`).
        actions: `[S, L]` actions taken.
        log_probs: `[S, L]` log-probabilities of those actions at acting time.
        values: `[S, L]` value estimates at acting time.
        advantages: `[S, L]` GAE advantages.
        returns: `[S, L]` value targets (advantages + values).
        burn_in: number of leading burn-in steps.
        rollout_stats: statistics of the rollout this minibatch comes from (for logging).
    """

    obs: torch.Tensor
    starts: torch.Tensor
    states: State
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    burn_in: int = 0
    rollout_stats: dict[str, torch.Tensor] = field(default_factory=dict)
