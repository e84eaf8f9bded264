"""EpochMeans: weighted means of per-minibatch diagnostics, logged once per PPO iteration."""

from __future__ import annotations

import torch


class EpochMeans:
    """Sums `value * weight` per key over an iteration's minibatches, without a host sync.

    `LightningModule.log(..., on_epoch=True)` from every training step computes the same means, but each
    call moves Lightning's result object between devices (about a millisecond of Python on a CPU): with
    a dozen diagnostics and many small minibatches that was a third of a training step. Here a step
    costs a few tensor additions, and `means()` hands the iteration's means to one `log_dict`.
    """

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._weights: dict[str, float] = {}

    def add(self, values: dict[str, torch.Tensor | float], weight: float) -> None:
        """Accumulate each scalar of `values` (a tensor or a number) with `weight` (a minibatch's size)."""
        for key, value in values.items():
            term = torch.as_tensor(value).detach().float() * weight
            self._sums[key] = self._sums[key] + term if key in self._sums else term
            self._weights[key] = self._weights.get(key, 0.0) + weight

    def pop(self) -> dict[str, torch.Tensor]:
        """The weighted mean of every key added since the last `pop` (empty if none), and start anew."""
        means = {key: total / self._weights[key] for key, total in self._sums.items()}
        self._sums, self._weights = {}, {}
        return means
