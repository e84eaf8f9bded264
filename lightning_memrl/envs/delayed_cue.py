"""The delayed cue task: remember a cue across a delay, then name it."""

from __future__ import annotations

import torch

from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.token_observations import TokenObservations


class DelayedCue(VectorTask):
    """Remember which of `num_cues` cues was shown at the first step and name it at the last.

    - Episode: exactly `horizon` steps. Step 0 shows the cue, steps 1 .. horizon-2 are blank (the
      delay, `horizon - 2` steps), step horizon-1 raises the query flag. The episode terminates
      after the action at the query step.
    - Observation `[num_cues + 1]`: the cue one-hot at step 0 (zeros otherwise), then the query flag.
    - Actions: `num_cues` discrete actions; only the action at the query step matters.
    - Reward: 1 if the action at the query step equals the cue, else 0 (all other steps 0).
    - Success: the query was answered right. Chance level: `1 / num_cues`.

    Args:
        num_envs: number of environments stepped together.
        horizon: episode length in steps (>= 2); the cue must be held for `horizon - 1` steps.
        num_cues: number of distinct cues (and actions).
        device: device of the task tensors.
        seed: seed of the task's generator.
    """

    can_truncate = False  # fixed length: episodes terminate, never truncate
    fixed_length = True

    def __init__(
        self,
        num_envs: int,
        horizon: int = 50,
        num_cues: int = 4,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ):
        if horizon < self.min_horizon():
            raise ValueError(f"delayed_cue needs horizon >= 2 (cue step + query step), got {horizon}")
        if num_cues < 2:
            raise ValueError(f"delayed_cue needs num_cues >= 2, got {num_cues}")
        super().__init__(num_envs, device, seed)
        self.horizon = horizon
        self.num_cues = num_cues
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.cue = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # phases 0 cue (its one-hot), 1 delay, 2 query (the query flag)
        steps = torch.arange(horizon + 1, device=self.device)
        phase = torch.where(steps == 0, 0, torch.where(steps == horizon - 1, 2, 1))
        flags = torch.zeros(3, num_cues + 1, device=self.device)
        flags[2, num_cues] = 1.0
        self._observations = TokenObservations(flags, [(0, num_cues), None, None], torch.zeros_like(steps), phase)

    @property
    def observation_size(self) -> int:
        return self.num_cues + 1

    @property
    def num_actions(self) -> int:
        return self.num_cues

    def _reset_envs(self, mask: torch.Tensor) -> None:
        new_cue = torch.randint(self.num_cues, (self.num_envs,), device=self.device, generator=self.generator)
        self.cue = torch.where(mask, new_cue, self.cue)
        self.t = torch.where(mask, torch.zeros_like(self.t), self.t)

    def _advance(self, actions: torch.Tensor):
        at_query = self.t == self.horizon - 1
        correct = at_query & (actions == self.cue)
        self.t = self.t + 1
        return correct.float(), at_query, torch.zeros_like(at_query), correct

    def _observe(self) -> torch.Tensor:
        return self._observations(self.cue.unsqueeze(1), self.t)

    @staticmethod
    def min_horizon(**task_kwargs: int) -> int:
        """The shortest valid episode: the cue step and the query step."""
        return 2

    @staticmethod
    def chance_level(horizon: int = 50, num_cues: int = 4) -> float:
        """Success rate of a uniform random policy."""
        return 1.0 / num_cues

    def oracle_action(self) -> torch.Tensor:
        return self.cue.clone()

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"t": self.t, "cue": self.cue}
