"""The vectorized task contract: torch-native, batch first, same-step autoreset.

Every built-in task is a `VectorTask`: all `num_envs` environments live in tensors on one device
and step together. Conventions follow Gymnasium's `VectorEnv`:

- `reset(seed=...) -> (obs [N, obs_size], info)`
- `step(actions [N]) -> (obs, reward [N], terminated [N], truncated [N], info)`

An env whose episode ends at a step is reset within that same step: the returned `obs` row is the
first observation of its next episode, and `info["final_observation"]` holds the last observation of
the episode that ended (to bootstrap a truncated episode). `info["success"]` is true where an
episode ended successfully at this step, and `oracle_action()` is the action an all-knowing policy
would take now (used by tests to prove reward and success signals right).
`terminated` and `truncated` are kept apart: a time limit is not an end.

Fixed-length tasks (`fixed_length = True`: every episode lasts exactly `horizon` steps) start every
env together at `reset`, so all envs are always at the same step of their episodes. `step` keeps that
step as a Python int and skips the reset work (and the second observation) on the steps where no
episode ends: on an accelerator that work would otherwise redraw episode content for every row at
every step, and knowing the step on the host costs no device sync.

A CUDA graph replays the kernels of one step on the same memory every time, so a task replayed that way
must take no host-side branch and keep its tensors where they are: `keep_in_place()` turns the clock off
and copies each step's new state tensors back into the ones the step read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np
import torch


class VectorTask(ABC):
    """Base class of the torch-native vectorized memory tasks.

    Args:
        num_envs: number of environments stepped together.
        device: device holding every tensor of the task.
        seed: seed of the task's own random generator (it touches no global RNG).
    """

    #: the episode length for fixed-length tasks (set by subclasses)
    horizon: int
    #: whether `step` can ever report `truncated`; tasks that only terminate set False, which spares the
    #: collector a host-device sync per step (its check for truncations to bootstrap)
    can_truncate: bool = True
    #: whether every episode lasts exactly `horizon` steps; such tasks keep their step in `t` (`[N]`, long)
    fixed_length: bool = False
    #: whether a step is tensor work alone (no host sync, fixed shapes on an accelerator), so that once
    #: `keep_in_place()` is on a CUDA graph can replay it
    capturable: bool = True

    def __init__(self, num_envs: int, device: torch.device | str = "cpu", seed: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(0 if seed is None else seed)
        # the step every env is at (fixed-length tasks, from `reset` on), or None when not known
        self._clock: int | None = None
        self._pinned: dict[str, torch.Tensor] | None = None  # the state tensors kept in place, while on

    # --- spaces --------------------------------------------------------------------------------
    @property
    @abstractmethod
    def observation_size(self) -> int:
        """Features of one observation."""

    @property
    @abstractmethod
    def num_actions(self) -> int:
        """Number of discrete actions."""

    @property
    def single_observation_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(0.0, 1.0, shape=(self.observation_size,), dtype=np.float32)

    @property
    def single_action_space(self) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(self.num_actions)

    # --- dynamics ------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Start a new episode in every env; `seed` reseeds the task's generator."""
        if seed is not None:
            self.generator.manual_seed(seed)
        self._reset_envs(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        self._clock = 0 if self.fixed_length and self._pinned is None else None
        self._copy_back()
        return self._observe(), {}

    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Advance every env one step with `actions [N]` (long), resetting finished envs.

        Where no episode ends at this step, `info["final_observation"]` may be the `obs` tensor itself.
        """
        out = self._step(actions)
        self._copy_back()
        return out

    def keep_in_place(self, on: bool = True) -> None:
        """Keep every state tensor at its address (`on`), or let steps replace them again (`off`).

        While on, `step` and `reset` (a subclass's too, when it ends in `VectorTask.reset`) copy the state
        tensors they compute (a task may write `self.t = self.t + 1`) into the tensors `_state_tensors()`
        named when it was turned on, and the fixed-length clock is off: every step runs the same kernels, the
        reset of finished envs included, on the same memory, which is what a CUDA graph replaying `step`
        needs. The rules are the same, but the reset work may draw from the generator at steps where a
        clocked run skips it, so the episode content can differ from a clocked run with the same seed.
        Turning it off finds the clock again (one host sync).
        """
        self._pinned = dict(self._state_tensors()) if on else None
        self._clock = None
        if not on:
            self._recover_clock()

    @property
    def kept_in_place(self) -> bool:
        """Whether `keep_in_place()` is on."""
        return self._pinned is not None

    def _copy_back(self) -> None:
        """While `keep_in_place` is on: write the state tensors that replaced the kept ones into them."""
        if self._pinned is None:
            return
        for name, kept in self._pinned.items():
            new = getattr(self, name)
            if new is not kept:
                kept.copy_(new)
                setattr(self, name, kept)

    def _step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        reward, terminated, truncated, success = self._advance(actions.to(self.device))
        if self._clock is not None:
            self._clock = (self._clock + 1) % self.horizon
            if self._clock != 0:  # no episode ends now: nothing to reset, the last observation is obs
                obs = self._observe()
                return obs, reward, terminated, truncated, {"final_observation": obs, "success": success}
        final_observation = self._observe()
        self._reset_envs(terminated | truncated)
        obs = self._observe()
        info = {"final_observation": final_observation, "success": success}
        return obs, reward, terminated, truncated, info

    @staticmethod
    def chance_level(**task_kwargs: Any) -> float:
        """Success rate of a uniform random policy for these task arguments."""
        raise NotImplementedError

    @staticmethod
    def min_horizon(**task_kwargs: Any) -> int:
        """The shortest `horizon` at which these other task arguments can always be solved (a curriculum's
        shortest stage): for most tasks the shortest valid one."""
        raise NotImplementedError

    def oracle_action(self) -> torch.Tensor:
        """The action a policy that knows the hidden answer takes now (`[N]`, long)."""
        raise NotImplementedError(f"{type(self).__name__} has no oracle")

    @abstractmethod
    def _reset_envs(self, mask: torch.Tensor) -> None:
        """Start new episodes in the envs where `mask [N]` is true."""

    @abstractmethod
    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Apply actions: `(reward, terminated, truncated, success)`, each `[N]`.

        `success` is false wherever the episode goes on (it is returned as `info["success"]`).
        """

    @abstractmethod
    def _observe(self) -> torch.Tensor:
        """The current observation of every env, `[N, observation_size]` float32."""

    # --- checkpointing -------------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors that make up the envs' state (subclasses list theirs)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: env tensors and the generator state."""
        return {
            "tensors": {k: v.clone() for k, v in self._state_tensors().items()},
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state["tensors"].items():
            getattr(self, name).copy_(value)
        self.generator.set_state(state["generator"].cpu())
        self._clock = None
        if self._pinned is None:
            self._recover_clock()

    def _recover_clock(self) -> None:
        """Know the step on the host again where every env is at the same step (one sync)."""
        if self.fixed_length and bool((self.t == self.t[0]).all()):
            self._clock = int(self.t[0])
