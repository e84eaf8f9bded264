"""A gymnasium env that misbehaves on cue, `Faulty-v0` (`gym:tests.reliability.faulty_envs:Faulty-v0`).

Observations are `Dict(position: Box(-1, 1, (2,)), cue: Discrete(3))`, actions `Discrete(2)`, reward 1 per step,
episodes of 5 steps. From its `at_step`-th step on (counted per copy since it was made), the copies whose first
reset seed is odd (copies 1, 3, ... of a vector env seeded with an even seed) do `fault`:

- `raise`: raise `RuntimeError("sensor failure")`;
- `nan_observation`: `position[1]` is NaN; `inf_reward`: the reward is inf;
- `wrong_shape`: `position` has 3 entries; `out_of_range`: `cue` is 7; `missing_key`: no `cue`.

With `while_file`, the fault happens only while that file exists (delete it to "fix" the env, in every process).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

FAULTS = ("none", "raise", "nan_observation", "inf_reward", "wrong_shape", "out_of_range", "missing_key")


class FaultyEnv(gym.Env):
    def __init__(self, fault: str = "none", at_step: int = 3, while_file: str | None = None):
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")
        self.fault, self.at_step, self.while_file = fault, at_step, while_file
        self.observation_space = gym.spaces.Dict(
            {"position": gym.spaces.Box(-1.0, 1.0, (2,), np.float32), "cue": gym.spaces.Discrete(3)}
        )
        self.action_space = gym.spaces.Discrete(2)
        self.steps = 0  # since the env was made
        self.t = 0
        self.odd_copy: bool | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self.odd_copy is None:
            self.odd_copy = seed is not None and seed % 2 == 1
        self.t = 0
        return self._observation(), {}

    def step(self, action):
        self.steps += 1
        self.t += 1
        faulty = self._faulty()
        if faulty and self.fault == "raise":
            raise RuntimeError("sensor failure")
        reward = float("inf") if faulty and self.fault == "inf_reward" else 1.0
        return self._observation(faulty), reward, self.t >= 5, False, {}

    def _faulty(self) -> bool:
        armed = self.while_file is None or os.path.exists(self.while_file)
        return bool(self.odd_copy) and self.steps >= self.at_step and armed

    def _observation(self, faulty: bool = False) -> dict[str, Any]:
        position = self.np_random.uniform(-1, 1, size=2).astype(np.float32)
        obs = {"position": position, "cue": int(self.np_random.integers(3))}
        if faulty and self.fault == "nan_observation":
            position[1] = np.nan
        elif faulty and self.fault == "wrong_shape":
            obs["position"] = np.zeros(3, dtype=np.float32)
        elif faulty and self.fault == "out_of_range":
            obs["cue"] = 7
        elif faulty and self.fault == "missing_key":
            del obs["cue"]
        return obs


if "Faulty-v0" not in gym.registry:
    gym.register(id="Faulty-v0", entry_point=FaultyEnv)
