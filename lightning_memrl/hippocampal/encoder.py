"""DualEncoder: an online sequence encoder and its momentum (EMA) target."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class SequenceEncoder(nn.Module):
    """Transitions `[B, T, F]` -> unit embeddings `[B, E]`: MLP per step, GRU, mean pool, projector.

    The projector (Linear -> LayerNorm -> ReLU -> Linear) is part of this module, so it is optimized
    with the rest, and its last layer is linear, so embeddings can take either sign.
    """

    def __init__(self, input_dim: int, embed_dim: int = 128, hidden_dim: int = 128):
        super().__init__()
        self.step = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU())
        self.rnn = nn.GRU(hidden_dim, hidden_dim, batch_first=True)
        self.projector = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim), nn.LayerNorm(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, embed_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # one sequence [T, F]
            x = x.unsqueeze(0)
        h, _ = self.rnn(self.step(x))
        return F.normalize(self.projector(h.mean(dim=1)), dim=-1)


class VectorEncoder(nn.Module):
    """Vectors `[..., F]` -> unit embeddings `[..., E]`: one linear map, or an MLP with `hidden_dim`.

    The key encoder of an episodic store whose entries are single vectors (a controller's output).
    The linear map starts orthogonal, so the embeddings first keep the inputs' angles.
    """

    def __init__(self, input_dim: int, embed_dim: int, hidden_dim: int | None = None):
        super().__init__()
        if hidden_dim is None:
            self.net: nn.Module = nn.Linear(input_dim, embed_dim, bias=False)
            nn.init.orthogonal_(self.net.weight)
        else:
            self.net = nn.Sequential(
                nn.Linear(input_dim, hidden_dim), nn.LayerNorm(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, embed_dim)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=-1)


class DualEncoder(nn.Module):
    """Online encoder (trained) and momentum target `theta_t <- m * theta_t + (1 - m) * theta_o`.

    Queries and anchors use the online encoder; stored keys and contrastive positives use the
    slowly moving target, so keys stay comparable while the online encoder learns.

    Args:
        input_dim: features per transition (state + action + reward).
        embed_dim: embedding size `E`.
        hidden_dim: hidden size of the step MLP and GRU.
        momentum: EMA momentum of the target (hippotorch's 0.995).
        online: the online encoder to use instead of a `SequenceEncoder` (for example a `VectorEncoder`
            for single vectors); it maps `[..., input_dim]` to unit `[..., embed_dim]`.
    """

    def __init__(
        self,
        input_dim: int,
        embed_dim: int = 128,
        hidden_dim: int = 128,
        momentum: float = 0.995,
        *,
        online: nn.Module | None = None,
    ):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"DualEncoder momentum must be in [0, 1), got {momentum}")
        self.input_dim, self.embed_dim, self.momentum = input_dim, embed_dim, momentum
        self.online = online if online is not None else SequenceEncoder(input_dim, embed_dim, hidden_dim)
        self.target = copy.deepcopy(self.online).requires_grad_(False)

    def encode_query(self, x: torch.Tensor) -> torch.Tensor:
        """Online embedding of transitions `[B, T, F]` (or `[T, F]`) -> `[B, E]` (vectors `[..., F]` -> `[..., E]`)."""
        return self.online(x)

    @torch.no_grad()
    def encode_key(self, x: torch.Tensor) -> torch.Tensor:
        """Target embedding (no gradient), the same shapes as `encode_query`."""
        return self.target(x)

    @torch.no_grad()
    def update_target(self) -> None:
        """One EMA step of the target towards the online encoder."""
        for t, o in zip(self.target.parameters(), self.online.parameters(), strict=True):
            t.lerp_(o, 1.0 - self.momentum)
