"""ValueNormalizer: running statistics of the value targets, so the critic learns a unit-scale target.

Returns grow with the agent (CartPole's reach ~100): an unnormalised value loss then dwarfs the
policy loss in a trunk shared by actor and critic, and one `vf_coef` cannot suit both the early and
the late scale. With normalisation the critic head predicts `(V - mean) / std`; the agent turns it
back into a return-scale value for acting and GAE, and trains the head on normalised targets.

The statistics are a debiased exponential moving average of the targets' first and second moments
(as MAPPO's `ValueNorm`), kept in buffers so they ride in checkpoints and move with the module.
Under DDP each rank folds in its own minibatch; DDP's buffer broadcast then keeps rank 0's statistics.
"""

from __future__ import annotations

import torch
from torch import nn


class ValueNormalizer(nn.Module):
    """Debiased EMA of the mean and variance of value targets, with `normalize` / `denormalize`.

    Args:
        beta: EMA decay per `update` call (one call per training minibatch); closer to 1 averages
            over more minibatches.
        epsilon: floor of the variance and of the debiasing weight.
    """

    def __init__(self, beta: float = 0.999, epsilon: float = 1e-5):
        super().__init__()
        if not 0.0 < beta < 1.0:
            raise ValueError(f"ValueNormalizer.beta must be in (0, 1), got {beta}")
        if not epsilon > 0:
            raise ValueError(f"ValueNormalizer.epsilon must be > 0, got {epsilon}")
        self.beta, self.epsilon = beta, epsilon
        self.register_buffer("running_mean", torch.zeros(()))
        self.register_buffer("running_mean_sq", torch.zeros(()))
        self.register_buffer("debiasing_term", torch.zeros(()))

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The debiased mean and standard deviation (0 and 1 before the first update)."""
        weight = self.debiasing_term.clamp_min(self.epsilon)
        mean = self.running_mean / weight
        mean_sq = self.running_mean_sq / weight
        var = (mean_sq - mean**2).clamp_min(self.epsilon)
        started = self.debiasing_term > 0
        return torch.where(started, mean, 0.0), torch.where(started, var.sqrt(), 1.0)

    @torch.no_grad()
    def update(self, targets: torch.Tensor) -> None:
        """Fold a batch of targets (any shape) into the running moments."""
        x = targets.detach().float()
        self.running_mean.mul_(self.beta).add_((1 - self.beta) * x.mean())
        self.running_mean_sq.mul_(self.beta).add_((1 - self.beta) * (x**2).mean())
        self.debiasing_term.mul_(self.beta).add_(1 - self.beta)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Return scale -> unit scale: `(x - mean) / std`."""
        mean, std = self.mean_std()
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Unit scale -> return scale: `x * std + mean`."""
        mean, std = self.mean_std()
        return x * std + mean

    def extra_repr(self) -> str:
        return f"beta={self.beta}, epsilon={self.epsilon}"
