"""stable-baselines3 adapter: off-policy algorithms sample from a HippocampalReplayBuffer.

from stable_baselines3 import DQN
from lightning_memrl.integrations.sb3 import SB3ReplayBufferWrapper
model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=SB3ReplayBufferWrapper,
            replay_buffer_kwargs={"mixture_ratio": 0.3})

hippotorch's form, a wrapper around a buffer you built, also works (it returns a `TransitionRecorder`):

sb3_buffer = SB3ReplayBufferWrapper(buffer, segmenter=TerminalSegmenter())
sb3_buffer.add(obs, next_obs, action, reward, done)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning_utilities.core.imports import RequirementCache

from lightning_memrl.errors import MissingDependencyError
from lightning_memrl.hippocampal import Consolidator, DualEncoder, Episode, HippocampalReplayBuffer, MemoryStore

if not RequirementCache("stable-baselines3"):
    raise MissingDependencyError(
        "lightning_memrl.integrations.sb3 needs stable-baselines3: pip install 'lightning-memrl[sb3]'"
    )

from gymnasium import spaces  # noqa: E402
from stable_baselines3.common.buffers import ReplayBuffer  # noqa: E402
from stable_baselines3.common.type_aliases import ReplayBufferSamples  # noqa: E402


class TerminalSegmenter:
    """Cuts each env's transition stream into `Episode`s at episode ends (or every `max_length` steps).

    Args:
        max_length: also cut a running episode after this many steps (`None`: only at episode ends).
    """

    def __init__(self, max_length: int | None = None):
        if max_length is not None and max_length < 2:
            raise ValueError(f"TerminalSegmenter.max_length must be >= 2, got {max_length}")
        self.max_length = max_length
        self._open: dict[int, list[tuple[np.ndarray, ...]]] = {}

    def add(
        self,
        env: int,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        done: bool,
    ) -> Episode | None:
        """Append one transition of env `env`; returns the finished segment, if this step ends one."""
        steps = self._open.setdefault(env, [])
        steps.append((obs, action, reward, next_obs, terminated))
        if not done and (self.max_length is None or len(steps) < self.max_length):
            return None
        del self._open[env]
        return Episode(
            states=torch.as_tensor(np.stack([s[0] for s in steps]), dtype=torch.float32),
            actions=torch.as_tensor(np.stack([s[1] for s in steps]), dtype=torch.float32).reshape(len(steps), -1),
            rewards=torch.as_tensor([s[2] for s in steps], dtype=torch.float32),
            dones=torch.as_tensor([s[4] for s in steps], dtype=torch.bool),
            next_states=torch.as_tensor(np.stack([s[3] for s in steps]), dtype=torch.float32),
        )

    def recent(self, env: int, length: int) -> torch.Tensor | None:
        """The last `length` transitions `[<=length, F]` of env `env`'s running segment (encoder input)."""
        steps = self._open.get(env)
        if not steps:
            return None
        rows = [np.concatenate([s[0].ravel(), np.ravel(s[1]), [s[2]]]) for s in steps[-length:]]
        return torch.as_tensor(np.stack(rows), dtype=torch.float32)


class TransitionRecorder:
    """One env's transitions in, finished episodes into a `HippocampalReplayBuffer` (hippotorch's SB3 wrapper).

    What `SB3ReplayBufferWrapper(buffer, segmenter=...)` returns: the seed's form, for a loop that feeds
    transitions by hand. For an SB3 algorithm pass `replay_buffer_class=SB3ReplayBufferWrapper` instead.

    Args:
        buffer: the buffer that receives the episodes.
        segmenter: cuts the transitions into episodes (default `TerminalSegmenter()`).
    """

    def __init__(self, buffer: HippocampalReplayBuffer, segmenter: TerminalSegmenter | None = None):
        self.buffer, self.segmenter = buffer, segmenter or TerminalSegmenter()

    @property
    def size(self) -> int:
        """Episodes stored in the buffer."""
        return len(self.buffer.store)

    def add(
        self,
        obs: Any,
        next_obs: Any,
        action: Any,
        reward: float,
        done: bool,
        info: dict[str, Any] | None = None,
    ) -> None:
        """Record one transition; a `done` files the episode (a time-limit cut, `info["TimeLimit.truncated"]`,
        is stored without a terminal flag)."""
        truncated = bool((info or {}).get("TimeLimit.truncated", False))
        episode = self.segmenter.add(
            0,
            np.asarray(obs, dtype=np.float32).ravel(),
            np.asarray(action, dtype=np.float32).reshape(-1),
            float(reward),
            np.asarray(next_obs, dtype=np.float32).ravel(),
            bool(done) and not truncated,
            bool(done),
        )
        if episode is not None:
            self.buffer.add_episode(episode)

    def sample(self, batch_size: int, **kwargs: Any) -> dict[str, torch.Tensor]:
        """`HippocampalReplayBuffer.sample`."""
        return self.buffer.sample(batch_size, **kwargs)

    def consolidate(self, **kwargs: Any) -> dict[str, float]:
        """`HippocampalReplayBuffer.consolidate`."""
        return self.buffer.consolidate(**kwargs)


class SB3ReplayBufferWrapper(ReplayBuffer):
    """An SB3 `ReplayBuffer` that also files finished episodes into a `HippocampalReplayBuffer`.

    Called as hippotorch did, with a buffer first (`SB3ReplayBufferWrapper(buffer, segmenter=...)`),
    it returns a `TransitionRecorder` for that buffer instead.

    `sample(B)` takes `round(B * mixture_ratio)` transitions by semantic retrieval (query: the last
    `query_length` transitions of env 0) from stored episodes and the rest uniformly from SB3's own
    storage (which also holds running episodes). A time-limit cut is not stored as a terminal.

    Args:
        buffer_size, observation_space, action_space, device, n_envs, optimize_memory_usage,
            handle_timeout_termination: as for SB3's `ReplayBuffer`.
        hippocampal: the buffer to fill; by default one is built for these spaces.
        segmenter: cuts transitions into episodes (default `TerminalSegmenter()`).
        mixture_ratio: semantic share of a sample (for the default buffer).
        top_k: episodes retrieved per sample.
        query_length: transitions in the retrieval query.
        embed_dim: embedding size of the default encoder.
        capacity: episodes kept by the default store.
        consolidate_every: run `consolidation_steps` sleep steps after this many stored episodes (0: never).
        consolidation_steps: steps per sleep.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        buffer = args[0] if args else kwargs.get("buffer")
        if isinstance(buffer, HippocampalReplayBuffer):  # hippotorch's form
            kwargs.pop("buffer", None)
            return TransitionRecorder(buffer, *args[1:], **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        hippocampal: HippocampalReplayBuffer | None = None,
        segmenter: TerminalSegmenter | None = None,
        mixture_ratio: float = 0.3,
        top_k: int = 5,
        query_length: int = 4,
        embed_dim: int = 64,
        capacity: int = 1024,
        consolidate_every: int = 0,
        consolidation_steps: int = 20,
    ):
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs,
            optimize_memory_usage,
            handle_timeout_termination,
        )
        if hippocampal is None:
            input_dim = int(np.prod(observation_space.shape)) + self.action_dim + 1
            encoder = DualEncoder(input_dim, embed_dim=embed_dim, hidden_dim=embed_dim)
            hippocampal = HippocampalReplayBuffer(
                MemoryStore(embed_dim, capacity), encoder, mixture_ratio, consolidator=Consolidator(encoder)
            )
        self.hippocampal, self.segmenter = hippocampal, segmenter or TerminalSegmenter()
        self.top_k, self.query_length = top_k, query_length
        self.consolidate_every, self.consolidation_steps = consolidate_every, consolidation_steps
        self.episodes_added = 0

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        super().add(obs, next_obs, action, reward, done, infos)
        for env in range(self.n_envs):
            truncated = bool(infos[env].get("TimeLimit.truncated", False)) if env < len(infos) else False
            episode = self.segmenter.add(
                env,
                np.asarray(obs[env], dtype=np.float32).ravel(),
                np.asarray(action[env]).reshape(-1),
                float(reward[env]),
                np.asarray(next_obs[env], dtype=np.float32).ravel(),
                bool(done[env]) and not truncated,
                bool(done[env]),
            )
            if episode is not None:
                self.hippocampal.add_episode(episode)
                self.episodes_added += 1
                if self.consolidate_every and self.episodes_added % self.consolidate_every == 0:
                    self.hippocampal.consolidate(self.consolidation_steps)

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples:
        query = self.segmenter.recent(0, self.query_length)
        n_sem = round(batch_size * self.hippocampal.mixture_ratio)
        if query is None or n_sem == 0 or len(self.hippocampal.store) == 0:
            return super().sample(batch_size, env)
        uniform = super().sample(batch_size - n_sem, env) if batch_size > n_sem else None
        ratio = self.hippocampal.mixture_ratio
        self.hippocampal.mixture_ratio = 1.0  # the uniform share comes from SB3's own storage
        try:
            sem = self.hippocampal.sample(n_sem, query=query, top_k=self.top_k)
        finally:
            self.hippocampal.mixture_ratio = ratio
        action_dtype = self.actions.dtype
        semantic = (
            self._normalize_obs(sem["states"].numpy().reshape(n_sem, *self.obs_shape), env),
            sem["actions"].numpy().reshape(n_sem, self.action_dim).astype(action_dtype),
            self._normalize_obs(sem["next_states"].numpy().reshape(n_sem, *self.obs_shape), env),
            sem["dones"].numpy().astype(np.float32).reshape(-1, 1),
            self._normalize_reward(sem["rewards"].numpy().reshape(-1, 1), env),
        )
        parts = [self.to_torch(x) for x in semantic]
        if uniform is not None:
            parts = [torch.cat([u, s.to(u.dtype)]) for u, s in zip(uniform[:5], parts, strict=True)]
        return ReplayBufferSamples(*parts)
