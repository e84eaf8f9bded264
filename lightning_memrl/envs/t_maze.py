"""The T-maze: see a cue at the start, walk a corridor, turn the cued way at the junction."""

from __future__ import annotations

import math

import torch

from lightning_memrl.envs.base import VectorTask

FORWARD, LEFT, RIGHT = 0, 1, 2


class TMaze(VectorTask):
    """A corridor of `horizon - 1` moves ends in a junction; turn the way the start cue pointed.

    The agent walks: it only advances when it moves forward, so the time it holds the cue is its own
    doing, and the decision happens where it stands, not at a fixed step.

    - Episode: the agent starts at cell 0; the junction is cell `horizon - 1`. At the junction a
      turn (left or right) ends the episode (terminated). Without a turn the episode is cut after
      `time_limit` steps (truncated). A policy that walks straight and turns finishes in exactly
      `horizon` steps.
    - Observation `[4]`: the cue one-hot (left, right) at step 0 only, then the corridor flag (before
      the junction) and the junction flag.
    - Actions: 3 — 0 forward (stays put at the junction), 1 turn left, 2 turn right (turns in the
      corridor bump into the wall: the agent stays put).
    - Reward: 1 for turning the cued way at the junction, else 0.
    - Success: the turn at the junction was the cued one. Chance level: see `chance_level`.

    Args:
        num_envs: number of environments stepped together.
        horizon: steps of the shortest episode: `horizon - 1` forward moves, then the turn (>= 2).
        time_limit: steps after which an episode without a turn is truncated (default `2 * horizon`).
        device: device of the task tensors.
        seed: seed of the task's generator.
    """

    def __init__(
        self,
        num_envs: int,
        horizon: int = 1002,
        time_limit: int | None = None,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ):
        if horizon < self.min_horizon():
            raise ValueError(f"t_maze needs horizon >= 2 (one corridor move and the turn), got {horizon}")
        time_limit = 2 * horizon if time_limit is None else time_limit
        if time_limit < horizon:
            raise ValueError(f"t_maze needs time_limit >= horizon ({horizon}), got {time_limit}")
        super().__init__(num_envs, device, seed)
        self.horizon = horizon
        self.time_limit = time_limit
        self.junction = horizon - 1
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.position = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.cue = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # the four observations there are, by code: cue left / cue right (step 0, in the corridor), the
        # corridor, the junction; a step picks a row per env instead of writing the columns one by one
        self._observations = torch.tensor(
            [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
            device=self.device,
        )

    @property
    def observation_size(self) -> int:
        return 4

    @property
    def num_actions(self) -> int:
        return 3

    def _reset_envs(self, mask: torch.Tensor) -> None:
        new_cue = torch.randint(2, (self.num_envs,), device=self.device, generator=self.generator)
        self.cue = torch.where(mask, new_cue, self.cue)
        self.t.masked_fill_(mask, 0)
        self.position.masked_fill_(mask, 0)

    def _advance(self, actions: torch.Tensor):
        at_junction = self.position == self.junction
        forward = actions == FORWARD
        turned = at_junction & ~forward
        success = turned & (actions == self.cue + LEFT)
        # a forward move at the junction stays put
        self.position.add_(forward).clamp_(max=self.junction)
        self.t += 1
        truncated = (self.t == self.time_limit) & ~turned
        return success.float(), turned, truncated, success

    def _observe(self) -> torch.Tensor:
        # the cue (codes 0, 1) at step 0, else the corridor (2) or the junction (3)
        code = torch.where(self.t == 0, self.cue, (self.position == self.junction).long() + 2)
        return self._observations.index_select(0, code)

    @staticmethod
    def min_horizon(**task_kwargs: int) -> int:
        """The shortest valid episode: one corridor move and the turn."""
        return 2

    @staticmethod
    def chance_level(horizon: int = 1002, time_limit: int | None = None) -> float:
        """Success rate of a uniform random policy (1/3 per action), exact.

        The `L = horizon - 1`-th forward move happens at step s with probability
        `C(s, L-1) (1/3)^L (2/3)^(s-L+1)`; from the junction, with `r = time_limit - 1 - s` steps
        left, each step turns with 2/3 (half of it the right way), so the right turn comes with
        `(1 - 3^-r) / 2`. The chance level is the sum over s of the product.
        """
        time_limit = 2 * horizon if time_limit is None else time_limit
        moves = horizon - 1
        total = 0.0
        for s in range(moves - 1, time_limit - 1):
            log_arrive = (
                math.lgamma(s + 1)
                - math.lgamma(moves)
                - math.lgamma(s - moves + 2)
                + moves * math.log(1 / 3)
                + (s - moves + 1) * math.log(2 / 3)
            )
            total += math.exp(log_arrive) * 0.5 * (1.0 - 3.0 ** -(time_limit - 1 - s))
        return total

    def oracle_action(self) -> torch.Tensor:
        return torch.where(self.position == self.junction, self.cue + LEFT, FORWARD)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"t": self.t, "position": self.position, "cue": self.cue}
