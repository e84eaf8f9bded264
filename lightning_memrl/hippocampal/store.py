"""MemoryStore: episodes with embedding keys, cosine top-k retrieval and value-aware eviction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from lightning_memrl.hippocampal.episode import Episode
from lightning_memrl.hippocampal.search import top_k_similar


class MemoryStore:
    """A bounded store of episodes keyed by embeddings `[E]`.

    When full, the episode with the lowest `0.5 * reward_rank + 0.3 * access + 0.2 * recency`
    (each normalised to [0, 1]) is evicted: low-reward, rarely retrieved, old episodes go first.

    Args:
        embed_dim: key size `E`.
        capacity: maximum number of episodes.
    """

    def __init__(self, embed_dim: int = 128, capacity: int = 1024):
        if capacity < 1 or embed_dim < 1:
            raise ValueError(f"MemoryStore needs embed_dim, capacity >= 1, got {embed_dim}, {capacity}")
        self.embed_dim, self.capacity = embed_dim, capacity
        self.episodes: list[Episode] = []
        self.keys = torch.zeros(0, embed_dim)
        self.rewards = torch.zeros(0)
        self.access = torch.zeros(0)
        self.inserted = torch.zeros(0, dtype=torch.long)
        self.writes = 0

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def num_transitions(self) -> int:
        return sum(len(e) for e in self.episodes)

    def add(self, episode: Episode, key: torch.Tensor) -> None:
        """Store `episode` under `key [E]`, evicting one episode first when full."""
        if key.shape != (self.embed_dim,):
            raise ValueError(f"MemoryStore key must be [{self.embed_dim}], got {tuple(key.shape)}")
        if len(self) >= self.capacity:
            self._evict(int(self.eviction_scores().argmin()))
        self.episodes.append(episode)
        self.keys = torch.cat([self.keys, F.normalize(key.detach().cpu().float(), dim=-1)[None]])
        self.rewards = torch.cat([self.rewards, torch.tensor([episode.total_reward])])
        self.access = torch.cat([self.access, torch.zeros(1)])
        self.inserted = torch.cat([self.inserted, torch.tensor([self.writes])])
        self.writes += 1

    def eviction_scores(self) -> torch.Tensor:
        """`[N]` keep-worthiness; the minimum is evicted."""
        n = len(self)
        rank = self.rewards.argsort().argsort().float() / max(1, n - 1)
        access = self.access / self.access.max().clamp_min(1.0)
        age = self.inserted.float()
        recency = (age - age.min()) / (age.max() - age.min()).clamp_min(1.0)
        return 0.5 * rank + 0.3 * access + 0.2 * recency

    def _evict(self, i: int) -> None:
        keep = torch.arange(len(self)) != i
        self.episodes.pop(i)
        self.keys, self.rewards, self.access, self.inserted = (
            t[keep] for t in (self.keys, self.rewards, self.access, self.inserted)
        )

    def retrieve(self, query: torch.Tensor, k: int = 5) -> torch.Tensor:
        """Indices `[min(k, N)]` of the episodes most similar (cosine) to `query [E]`; counts an access."""
        if len(self) == 0:
            return torch.zeros(0, dtype=torch.long)
        _, top = top_k_similar(F.normalize(query.detach().cpu().float(), dim=-1)[None], self.keys, k)
        top = top[0]
        self.access[top] += 1
        return top

    @torch.no_grad()
    def refresh_keys(self, encode: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Re-encode every key with `encode(transitions [1, T, F]) -> [1, E]` (after the encoder moved)."""
        if self.episodes:
            self.keys = torch.cat([encode(e.transitions()[None]).cpu().float() for e in self.episodes])

    # --- checkpointing ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        fields = ("states", "actions", "rewards", "dones", "next_states")
        return {
            "episodes": [{f: getattr(e, f) for f in fields} for e in self.episodes],
            "keys": self.keys,
            "rewards": self.rewards,
            "access": self.access,
            "inserted": self.inserted,
            "writes": self.writes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes = [Episode(**e) for e in state["episodes"]]
        self.keys, self.rewards = state["keys"].clone(), state["rewards"].clone()
        self.access, self.inserted = state["access"].clone(), state["inserted"].clone()
        self.writes = state["writes"]
