"""Episodes and the fixed-length windows (segments) the hippocampal encoder reads."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Episode:
    """One recorded episode (or a segment of one).

    Attributes:
        states: observations `[T, S]`.
        actions: actions `[T, A]` (discrete actions as a one-hot or a single index column).
        rewards: rewards `[T]`.
        dones: `[T]` true where the episode terminated after that step.
        next_states: observations after each step `[T, S]`; defaults to `states` shifted by one.
    """

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    next_states: torch.Tensor | None = None

    def __post_init__(self) -> None:
        t = self.states.shape[0]
        if self.actions.dim() == 1:
            self.actions = self.actions.unsqueeze(-1)
        if self.actions.shape[0] != t or self.rewards.shape != (t,) or self.dones.shape != (t,):
            raise ValueError(
                f"Episode needs states [T, S], actions [T, A], rewards [T], dones [T] with one T; got "
                f"{tuple(self.states.shape)}, {tuple(self.actions.shape)}, {tuple(self.rewards.shape)}, "
                f"{tuple(self.dones.shape)}"
            )
        if self.next_states is None:
            self.next_states = torch.cat([self.states[1:], self.states[-1:]], dim=0)

    def __len__(self) -> int:
        return self.states.shape[0]

    @property
    def total_reward(self) -> float:
        return float(self.rewards.sum())

    def transitions(self) -> torch.Tensor:
        """`[T, S + A + 1]`: each step's state, action and reward, the encoder's input."""
        return torch.cat([self.states.float(), self.actions.float(), self.rewards.float().unsqueeze(-1)], dim=-1)


def windows(episode: Episode, length: int) -> torch.Tensor:
    """All windows of `length` consecutive transitions: `[T - length + 1, length, F]` (empty if too short)."""
    x = episode.transitions()
    if len(episode) < length:
        return x.new_zeros(0, length, x.shape[-1])
    return x.unfold(0, length, 1).transpose(1, 2)
