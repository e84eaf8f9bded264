"""Consolidator: the "sleep" phase, a reward-aware contrastive objective for the DualEncoder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from lightning_memrl.hippocampal.encoder import DualEncoder
from lightning_memrl.hippocampal.episode import windows
from lightning_memrl.hippocampal.store import MemoryStore


def reward_aware_infonce(
    anchors: torch.Tensor, positives: torch.Tensor, rewards: torch.Tensor, *, temperature: float, reward_weight: float
) -> dict[str, torch.Tensor]:
    """InfoNCE on unit embeddings with reward-weighted positives.

    Args:
        anchors: online embeddings `[B, E]` (unit norm).
        positives: target embeddings `[B, E]` of the window after each anchor (unit norm).
        rewards: episode return of each pair `[B]`.
        temperature: softmax temperature.
        reward_weight: mix `w` of the reward-weighted term: `(1 - w) * temporal + w * reward`.

    Returns:
        `loss` and detached `loss_temporal`, `loss_reward`, `accuracy` (anchor picks its positive).
    """
    logits = anchors @ positives.T / temperature
    labels = torch.arange(anchors.shape[0], device=anchors.device)
    per_pair = F.cross_entropy(logits, labels, reduction="none")
    n = rewards.numel()
    rank = rewards.argsort().argsort().float() / max(1, n - 1)  # 0 = lowest return, 1 = highest
    weights = 0.1 + 0.9 * rank
    temporal = per_pair.mean()
    reward = (weights * per_pair).sum() / weights.sum()
    loss = (1 - reward_weight) * temporal + reward_weight * reward
    accuracy = (logits.argmax(-1) == labels).float().mean()
    return {
        "loss": loss,
        "loss_temporal": temporal.detach(),
        "loss_reward": reward.detach(),
        "accuracy": accuracy.detach(),
    }


@contextmanager
def _trainable(module: torch.nn.Module) -> Iterator[None]:
    """Gradients for `module`'s parameters inside, whatever their `requires_grad` outside.

    An episodic store's key encoder is frozen for the PPO optimizer and trained only here.
    """
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(True)
    try:
        with torch.enable_grad():
            yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


class Consolidator:
    """Trains the online encoder on stored experience, then moves the momentum target.

    `update(anchors, positives, returns)` is one step of the reward-aware InfoNCE on any pairs: the
    anchor through the online encoder, its positive (what came next) through the momentum target.
    `step(store)` draws those pairs from a `MemoryStore` of episodes: episodes with probability
    `softmax(R / max(std R, 0.1))` (rewarding ones more often), a random window of `window`
    transitions as the anchor and the next window as its positive. An agent's `EpisodicMemory`
    draws its own pairs (consecutive entries of one episode) and calls `update`.

    Args:
        encoder: the DualEncoder to train.
        temperature: InfoNCE temperature (0.07).
        reward_weight: weight of the reward-weighted term (0.5).
        lr: Adam learning rate of the online encoder, projector included.
        window: transitions per anchor / positive window.
        refresh_every: re-encode the store's keys every this many steps (0: never).
    """

    def __init__(
        self,
        encoder: DualEncoder,
        *,
        temperature: float = 0.07,
        reward_weight: float = 0.5,
        lr: float = 1e-4,
        window: int = 2,
        refresh_every: int = 100,
    ):
        if not temperature > 0 or not 0.0 <= reward_weight <= 1.0 or window < 1:
            raise ValueError(
                f"Consolidator needs temperature > 0, reward_weight in [0, 1], window >= 1; got "
                f"{temperature}, {reward_weight}, {window}"
            )
        self.encoder, self.temperature, self.reward_weight = encoder, temperature, reward_weight
        self.window, self.refresh_every = window, refresh_every
        self.optimizer = torch.optim.Adam(encoder.online.parameters(), lr=lr)
        self.steps = 0

    def sample_pairs(
        self, store: MemoryStore, batch_size: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """`(anchor windows [B, W, F], positive windows [B, W, F], returns [B])`, or None if too few."""
        eligible = [i for i, e in enumerate(store.episodes) if len(e) >= 2 * self.window]
        if not eligible:
            return None
        returns = store.rewards[eligible]
        probs = (returns / returns.std(unbiased=False).clamp_min(0.1)).softmax(0) if len(eligible) > 1 else None
        picks = (
            torch.multinomial(probs, batch_size, replacement=True, generator=generator)
            if probs is not None
            else torch.zeros(batch_size, dtype=torch.long)
        )
        anchors, positives = [], []
        for p in picks.tolist():
            w = windows(store.episodes[eligible[p]], self.window)
            s = int(torch.randint(0, w.shape[0] - self.window, (1,), generator=generator))
            anchors.append(w[s])
            positives.append(w[s + self.window])
        return torch.stack(anchors), torch.stack(positives), returns[picks]

    def step(
        self, store: MemoryStore, batch_size: int = 64, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """One optimizer step; returns the detached loss terms (empty if the store has no usable episode)."""
        pairs = self.sample_pairs(store, batch_size, generator)
        if pairs is None:
            return {}
        out = self.update(*pairs)
        if self.refresh_every and self.steps % self.refresh_every == 0:
            store.refresh_keys(self.encoder.encode_key)
        return out

    def update(self, anchors: torch.Tensor, positives: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimizer step on pairs, then one momentum step of the target; returns the detached loss terms.

        Args:
            anchors: encoder inputs of the anchors `[B, ...]` (windows `[B, W, F]` or vectors `[B, F]`).
            positives: encoder inputs of what followed each anchor, the same shape.
            returns: episode return of each pair `[B]`.
        """
        device = next(self.encoder.parameters()).device
        anchors, positives, returns = (t.to(device) for t in (anchors, positives, returns))
        with _trainable(self.encoder.online):
            out = reward_aware_infonce(
                self.encoder.encode_query(anchors),
                self.encoder.encode_key(positives),
                returns,
                temperature=self.temperature,
                reward_weight=self.reward_weight,
            )
            self.optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            self.optimizer.step()
        self.encoder.update_target()
        self.steps += 1
        return {k: v.detach() for k, v in out.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = state["steps"]
