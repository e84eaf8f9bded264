"""Gymnasium envs of our own, registered on import (use them as `gym:lightning_memrl.envs.gym_tasks:<id>`).

- `MaskedCartPole-v1`: CartPole-v1 with the velocities hidden. The observation is the cart position
  and the pole angle only, so a policy must infer both velocities from the history: a memory task.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class PositionOnly(gym.ObservationWrapper):
    """Keep the components `keep` of a `Box` observation (for CartPole: position and angle).

    Args:
        env: an env with a flat `Box` observation.
        keep: indices of the observation components to keep.
    """

    def __init__(self, env: gym.Env, keep: tuple[int, ...] = (0, 2)):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"PositionOnly needs a flat Box observation space, got {space}")
        self.keep = np.asarray(keep, dtype=np.int64)
        self.observation_space = gym.spaces.Box(space.low[self.keep], space.high[self.keep], dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.keep]


def masked_cartpole(**kwargs: Any) -> gym.Env:
    """CartPole-v1 (500-step time limit) observing cart position and pole angle only."""
    return PositionOnly(gym.make("CartPole-v1", **kwargs), keep=(0, 2))


if "MaskedCartPole-v1" not in gym.registry:
    gym.register(id="MaskedCartPole-v1", entry_point=masked_cartpole)
