"""Distractor navigation: remember which of several targets was cued, find it on a track, stay on it."""

from __future__ import annotations

import torch

from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.sampling import put_rows, random_subsets, redraw_rows


class DistractorNavigation(VectorTask):
    """Find the cued one of `num_distractors + 1` coloured targets on a 1-D track and be on it at the end.

    Each episode places `K = num_distractors + 1` targets, one per colour, on distinct uniformly
    random cells of a track of `track_len` cells; one colour is cued. The agent sees the cue only at
    the first step and sees a target's colour only while standing on it, so it must hold the cue
    while it searches, and tell the cued target from the distractors, which look the same but for
    their colour.

    - Episode: exactly `horizon` steps; the agent starts on the middle cell `track_len // 2`. The
      episode terminates after the action at step horizon-1.
    - Observation `[2 * K + 1]`: the cued colour one-hot at step 0 (zeros otherwise), the one-hot of
      the colour of the target on the agent's cell (zeros if none), the agent's position
      `cell / (track_len - 1)`.
    - Actions: 3 — 0 move left, 1 stay, 2 move right (moves past either end of the track stay put).
    - Reward: 1 at the last step if the agent then stands on the cued target, else 0.
    - Success: on the cued target after the last action. Chance level: `1 / track_len` (the cued
      target's cell is uniform over the track and independent of a policy that cannot see it).

    Args:
        num_envs: number of environments stepped together.
        horizon: episode length in steps (>= track_len // 2, enough to reach any cell).
        track_len: cells of the track (>= num_distractors + 1).
        num_distractors: targets besides the cued one.
        device: device of the task tensors.
        seed: seed of the task's generator.
    """

    can_truncate = False  # fixed length: episodes terminate, never truncate
    fixed_length = True

    def __init__(
        self,
        num_envs: int,
        horizon: int = 20,
        track_len: int = 21,
        num_distractors: int = 2,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ):
        if num_distractors < 1:
            raise ValueError(f"distractor_navigation needs num_distractors >= 1, got {num_distractors}")
        if track_len < num_distractors + 1:
            raise ValueError(
                f"distractor_navigation needs track_len >= num_distractors + 1 = {num_distractors + 1} "
                f"(one cell per target), got {track_len}"
            )
        if horizon < max(1, track_len // 2):
            raise ValueError(
                f"distractor_navigation needs horizon >= track_len // 2 = {track_len // 2} to reach every "
                f"cell, got {horizon}"
            )
        super().__init__(num_envs, device, seed)
        self.horizon = horizon
        self.track_len = track_len
        self.num_distractors = num_distractors
        self.num_targets = num_distractors + 1
        self.start = track_len // 2
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.position = torch.full((num_envs,), self.start, dtype=torch.long, device=self.device)
        # cell of the target of each colour
        self.targets = torch.zeros(num_envs, self.num_targets, dtype=torch.long, device=self.device)
        # what the agent sees on each cell, as a row of `_cell_views`: colour * track_len + cell, where
        # colour is that of the target on the cell, or num_targets where there is none
        cells = torch.arange(track_len, device=self.device)
        self.cell_views = (self.num_targets * track_len + cells).repeat(num_envs, 1)
        self.cue = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.goal = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self._build_observation_tables()

    def _build_observation_tables(self) -> None:
        """Every observation is a cue row (the cued colour at step 0, else zeros) plus a cell view row."""
        k, length = self.num_targets, self.track_len
        colours = torch.arange(k, device=self.device)
        self._cue_rows = torch.zeros(k + 1, 2 * k + 1, device=self.device)  # row k: no cue shown
        self._cue_rows[colours, colours] = 1.0
        self._no_cue = torch.tensor(k, device=self.device)
        # row colour * length + cell: the colour's one-hot (none for colour k) and the cell's position
        views = torch.zeros(k + 1, length, 2 * k + 1, device=self.device)
        views[colours, :, k + colours] = 1.0
        views[:, :, -1] = torch.arange(length, device=self.device) / max(length - 1, 1)
        self._cell_views = views.view((k + 1) * length, 2 * k + 1)

    @property
    def observation_size(self) -> int:
        return 2 * self.num_targets + 1

    @property
    def num_actions(self) -> int:
        return 3

    def _reset_envs(self, mask: torch.Tensor) -> None:
        rows = redraw_rows(mask)
        if rows.shape[0] == 0:
            return
        count = rows.shape[0]
        targets = random_subsets(count, self.track_len, self.num_targets, self.generator, self.device)
        cue = torch.randint(self.num_targets, (count, 1), device=self.device, generator=self.generator)
        colours = torch.full((count, self.track_len), self.num_targets, dtype=torch.long, device=self.device)
        colours.scatter_(1, targets, torch.arange(self.num_targets, device=self.device).expand(count, -1))
        put_rows(self.targets, rows, mask, targets)
        put_rows(
            self.cell_views, rows, mask, colours * self.track_len + torch.arange(self.track_len, device=self.device)
        )
        put_rows(self.cue, rows, mask, cue.squeeze(1))
        put_rows(self.goal, rows, mask, targets.gather(1, cue).squeeze(1))
        self.t.masked_fill_(mask, 0)
        self.position.masked_fill_(mask, self.start)

    def _advance(self, actions: torch.Tensor):
        self.position = (self.position + actions - 1).clamp(0, self.track_len - 1)
        self.t += 1
        done = self.t == self.horizon
        success = done & (self.position == self.goal)
        return success.float(), done, torch.zeros_like(done), success

    def _observe(self) -> torch.Tensor:
        cue = self._cue_rows.index_select(0, torch.where(self.t == 0, self.cue, self._no_cue))
        view = self.cell_views.gather(1, self.position.unsqueeze(1)).squeeze(1)
        return cue.add_(self._cell_views.index_select(0, view))

    @staticmethod
    def min_horizon(track_len: int = 21, **task_kwargs: int) -> int:
        """The shortest episode in which a search always finds the cued target: to one end of the track and
        back over the whole of it (`track_len // 2 + track_len - 1` moves; a shorter episode is valid down to
        `track_len // 2`, but then no policy can always succeed, so a curriculum cannot start there)."""
        return track_len // 2 + track_len - 1

    @staticmethod
    def chance_level(horizon: int = 20, track_len: int = 21, num_distractors: int = 2) -> float:
        """Success rate of a uniform random policy: it ends on the cued target's cell with `1 / track_len`."""
        return 1.0 / track_len

    def oracle_action(self) -> torch.Tensor:
        return torch.sign(self.goal - self.position) + 1

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "t": self.t,
            "position": self.position,
            "targets": self.targets,
            "cell_views": self.cell_views,
            "cue": self.cue,
            "goal": self.goal,
        }
