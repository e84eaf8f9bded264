"""HippocampalReplayBuffer: transitions drawn partly by semantic retrieval, partly uniformly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lightning_memrl.hippocampal.consolidator import Consolidator
from lightning_memrl.hippocampal.encoder import DualEncoder
from lightning_memrl.hippocampal.episode import Episode
from lightning_memrl.hippocampal.hub import load_memory_from_hub, push_memory_to_hub
from lightning_memrl.hippocampal.quality import retrieval_quality
from lightning_memrl.hippocampal.store import MemoryStore


class HippocampalReplayBuffer:
    """A replay buffer over a `MemoryStore` of episodes.

    `sample(B, query)` returns exactly `round(B * mixture_ratio)` transitions from the `top_k`
    episodes most similar to the query (drawn with replacement, so the semantic share never falls
    short) and the rest uniformly over every stored transition. The query is a transition sequence
    `[T, F]` (one step is `[1, F]`) encoded by the same encoder as the keys, so both are alike.
    hippotorch's call forms work as its README wrote them: `HippocampalReplayBuffer(memory=store,
    encoder=...)`, `sample(B, query_state=...)`, `consolidate(steps=..., report_quality=True)`,
    `save_to_hub` / `load_memory_from_hub`.

    Args:
        memory: the episode store (`MemoryStore`; also the attribute `store`).
        encoder: encodes episodes to keys (target) and queries (online).
        mixture_ratio: share of semantic samples in [0, 1].
        consolidator: optional; `consolidate` runs its steps.
    """

    def __init__(
        self,
        memory: MemoryStore,
        encoder: DualEncoder,
        mixture_ratio: float = 0.5,
        consolidator: Consolidator | None = None,
    ):
        if not 0.0 <= mixture_ratio <= 1.0:
            raise ValueError(f"mixture_ratio must be in [0, 1], got {mixture_ratio}")
        self._check_embed_dim(memory, encoder)
        self.store, self.encoder, self.mixture_ratio, self.consolidator = memory, encoder, mixture_ratio, consolidator

    @staticmethod
    def _check_embed_dim(store: MemoryStore, encoder: DualEncoder) -> None:
        if store.embed_dim != encoder.embed_dim:
            raise ValueError(f"store.embed_dim ({store.embed_dim}) != encoder.embed_dim ({encoder.embed_dim})")

    @property
    def memory(self) -> MemoryStore:
        """The episode store (hippotorch's name for `store`)."""
        return self.store

    def __len__(self) -> int:
        return self.store.num_transitions

    def add_episode(self, episode: Episode) -> None:
        """Encode `episode` with the target encoder and store it."""
        device = next(self.encoder.parameters()).device
        key = self.encoder.encode_key(episode.transitions().to(device)[None])[0]
        self.store.add(episode, key)

    def _gather(self, pairs: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        eps = self.store.episodes
        out = {}
        for field in ("states", "actions", "rewards", "next_states", "dones"):
            out[field] = torch.stack([getattr(eps[e], field)[t] for e, t in pairs]) if pairs else torch.zeros(0)
        return out

    @torch.no_grad()
    def sample(
        self,
        batch_size: int,
        query: torch.Tensor | None = None,
        top_k: int = 5,
        generator: torch.Generator | None = None,
        *,
        query_state: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """`batch_size` transitions: `states, actions, rewards, next_states, dones` and `semantic [B]` (bool).

        `query` is transitions `[T, F]` or one transition `[F]`; `query_state` (hippotorch's name) is
        the same thing. Without a query every sample is uniform.
        """
        if query_state is not None:
            if query is not None:
                raise ValueError("HippocampalReplayBuffer.sample takes query or query_state (the same thing), not both")
            query = query_state
        if len(self.store) == 0:
            raise ValueError("HippocampalReplayBuffer.sample: the buffer is empty; add episodes first")
        n_sem = round(batch_size * self.mixture_ratio) if query is not None else 0
        pairs: list[tuple[int, int]] = []
        if n_sem:
            q = query if query.dim() == 2 else query[None]
            device = next(self.encoder.parameters()).device
            top = self.store.retrieve(self.encoder.encode_query(q.float().to(device)[None])[0], top_k)
            lengths = torch.tensor([len(self.store.episodes[i]) for i in top.tolist()], dtype=torch.float)
            picks = torch.multinomial(lengths, n_sem, replacement=True, generator=generator)
            for p in picks.tolist():
                e = int(top[p])
                pairs.append((e, int(torch.randint(0, len(self.store.episodes[e]), (1,), generator=generator))))
        lengths = torch.tensor([len(e) for e in self.store.episodes])
        offsets = torch.cumsum(lengths, 0)
        flat = torch.randint(0, int(offsets[-1]), (batch_size - n_sem,), generator=generator)
        episode = torch.searchsorted(offsets, flat, right=True)
        step = flat - (offsets[episode] - lengths[episode])
        pairs += list(zip(episode.tolist(), step.tolist(), strict=True))
        batch = self._gather(pairs)
        batch["semantic"] = torch.arange(batch_size) < n_sem
        return batch

    def consolidate(
        self,
        steps: int = 50,
        batch_size: int = 64,
        *,
        report_quality: bool = False,
        refresh_keys: bool = True,
        top_k: int = 5,
    ) -> dict[str, float]:
        """Run `steps` consolidation steps ("sleep"); returns the mean of each loss term.

        Args:
            steps: consolidation steps.
            batch_size: pairs per step.
            report_quality: also return the retrieval quality before and after the sleep
                (`quality_before/*`, `quality_after/*`: see `retrieval_quality`; each stored episode
                queries with its online embedding, neighbours from other episodes).
            refresh_keys: re-encode every stored key with the moved target encoder at the end.
            top_k: neighbours per query of the quality figures.
        """
        if self.consolidator is None:
            raise ValueError("HippocampalReplayBuffer.consolidate needs a consolidator (pass consolidator=...)")
        out: dict[str, float] = {}
        if report_quality:
            out.update({f"quality_before/{k}": v for k, v in self.retrieval_quality(top_k).items()})
        logs: dict[str, list[float]] = {}
        for _ in range(steps):
            for k, v in self.consolidator.step(self.store, batch_size).items():
                logs.setdefault(k, []).append(float(v))
        if refresh_keys:
            self.store.refresh_keys(self.encoder.encode_key)
        out.update({k: sum(v) / len(v) for k, v in logs.items()})
        if report_quality:
            out.update({f"quality_after/{k}": v for k, v in self.retrieval_quality(top_k).items()})
        return out

    @torch.no_grad()
    def retrieval_quality(self, top_k: int = 5) -> dict[str, float]:
        """`retrieval_quality` of the store: each episode's online embedding against the other episodes' keys."""
        device = next(self.encoder.parameters()).device
        episodes = self.store.episodes
        if not episodes:
            return retrieval_quality(*(torch.zeros(0, self.store.embed_dim),) * 2, *(torch.zeros(0),) * 4, k=top_k)
        queries = torch.cat([self.encoder.encode_query(e.transitions().to(device)[None]).cpu() for e in episodes])
        groups = torch.arange(len(episodes))
        rewards = self.store.rewards
        return retrieval_quality(queries, self.store.keys, rewards, rewards, groups, groups, k=top_k)

    # --- the Hub (hippotorch's convenience wrappers) ----------------------------------------------
    def save_to_hub(self, repo_id: str, *, private: bool = False) -> str:
        """Upload the episode store to the Hub repo `repo_id` (`push_memory_to_hub(buffer.store, repo_id)`)."""
        return push_memory_to_hub(self.store, repo_id, private=private)

    def load_memory_from_hub(self, repo_id: str | Path) -> MemoryStore:
        """Replace the episode store with the one of a Hub repo (or local directory); returns it."""
        store = load_memory_from_hub(repo_id)
        self._check_embed_dim(store, self.encoder)
        self.store = store
        return store

    def state_dict(self) -> dict[str, Any]:
        """Store, encoder and consolidator state (for checkpoints and the hub)."""
        state = {"store": self.store.state_dict(), "encoder": self.encoder.state_dict()}
        if self.consolidator is not None:
            state["consolidator"] = self.consolidator.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.store.load_state_dict(state["store"])
        self.encoder.load_state_dict(state["encoder"])
        if self.consolidator is not None and "consolidator" in state:
            self.consolidator.load_state_dict(state["consolidator"])
