"""Small gymnasium envs with known behaviour, registered on import for the adapter and agent tests.

- `Counter-v0`: observation `[t]`, reward `t + 1` at step `t`, terminates after `terminate_at` steps;
  registered with a time limit (`max_episode_steps`) so it can also be truncated. The true return of
  an episode of length `L` is `L (L + 1) / 2`.
- `Spaces-v0`: any observation and action space; observations are seeded samples, the last action
  received is kept (and checked to lie in the action space); reports `is_success` when asked.
- `Masked-v0`: `Discrete(n)` actions with a random action mask per step (at least one allowed), in the
  Dict observation's `action_mask` key or (`mask_in_info=True`) in `info["action_mask"]`; a masked
  action raises. Reward: 1 for the lowest allowed action.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class CounterEnv(gym.Env):
    def __init__(self, terminate_at: int = 5):
        self.terminate_at = terminate_at
        self.observation_space = gym.spaces.Box(0.0, 1000.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        reward = float(self.t + 1)
        self.t += 1
        return np.array([self.t], dtype=np.float32), reward, self.t >= self.terminate_at, False, {}


class SpacesEnv(gym.Env):
    def __init__(
        self,
        observation_space: gym.spaces.Space | None = None,
        action_space: gym.spaces.Space | None = None,
        episode_length: int = 4,
        report_success: bool = False,
    ):
        self.observation_space = observation_space or gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = action_space or gym.spaces.Discrete(3)
        self.episode_length = episode_length
        self.report_success = report_success
        self.t = 0
        self.last_action = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.observation_space.seed(seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        self.last_action = action
        self.t += 1
        done = self.t >= self.episode_length
        # reward: the mean of the action's components, so learning signals differ per action
        reward = float(np.mean(np.asarray(action, dtype=np.float64)))
        info = {"is_success": reward > 0} if self.report_success and done else {}
        return self.observation_space.sample(), reward, done, False, info


class MaskedEnv(gym.Env):
    def __init__(self, n: int = 5, episode_length: int = 6, mask_in_info: bool = False):
        self.n, self.episode_length, self.mask_in_info = n, episode_length, mask_in_info
        obs = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        mask = gym.spaces.MultiBinary(n)
        self.observation_space = obs if mask_in_info else gym.spaces.Dict({"obs": obs, "action_mask": mask})
        self.action_space = gym.spaces.Discrete(n)
        self.t = 0
        self.mask = np.ones(n, dtype=np.int8)

    def _observe(self):
        self.mask = (self.np_random.random(self.n) < 0.4).astype(np.int8)
        self.mask[self.np_random.integers(self.n)] = 1
        obs = self.np_random.uniform(-1, 1, size=2).astype(np.float32)
        if self.mask_in_info:
            return obs, {"action_mask": self.mask.copy()}
        return {"obs": obs, "action_mask": self.mask.copy()}, {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._observe()

    def step(self, action):
        if not self.mask[int(action)]:
            raise ValueError(f"action {action} is masked: {self.mask}")
        reward = float(int(action) == int(np.flatnonzero(self.mask)[0]))
        self.t += 1
        obs, info = self._observe()
        return obs, reward, self.t >= self.episode_length, False, info


if "Counter-v0" not in gym.registry:
    gym.register(id="Counter-v0", entry_point=CounterEnv, max_episode_steps=3)
    gym.register(id="CounterNoLimit-v0", entry_point=CounterEnv)
    gym.register(id="Spaces-v0", entry_point=SpacesEnv)
    gym.register(id="Masked-v0", entry_point=MaskedEnv)
