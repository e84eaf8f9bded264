"""Multi-cue delay: several cues at random times, a delay, then recall them in order."""

from __future__ import annotations

import torch

from lightning_memrl.envs.sampling import put_rows, random_subsets, redraw_rows
from lightning_memrl.envs.scored_answers import ScoredAnswersTask
from lightning_memrl.envs.token_observations import TokenObservations, column_at


class MultiCueDelay(ScoredAnswersTask):
    """`num_cues` cues appear at random steps of a presentation window; after a delay, name them in order.

    - Episode: exactly `horizon` steps. Steps 0 .. presentation_len-1 are the presentation window:
      the cues appear at `num_cues` distinct random steps of it (uniform tokens), the other steps are
      blank. Then `delay = horizon - presentation_len - num_cues` blank steps, then `num_cues` query
      steps; the episode terminates after the action at the last query step.
    - Observation `[vocab_size + 1]`: the cue one-hot when a cue is shown (zeros otherwise), then the
      query flag.
    - Actions: `vocab_size` discrete actions; at query step i the answer is the i-th cue shown.
      Actions at other steps are ignored.
    - Reward: `1 / num_cues` per correct answer (the return is the fraction of cues right).
    - Success: every cue right, in order. Chance level: `vocab_size ** -num_cues`.

    Args:
        num_envs: number of environments stepped together.
        horizon: episode length in steps (>= presentation_len + num_cues).
        vocab_size: number of distinct cue tokens (and actions).
        num_cues: cues to remember.
        presentation_len: steps of the presentation window (>= num_cues).
        device: device of the task tensors.
        seed: seed of the task's generator.
    """

    def __init__(
        self,
        num_envs: int,
        horizon: int = 23,
        vocab_size: int = 8,
        num_cues: int = 3,
        presentation_len: int = 10,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ):
        if vocab_size < 2:
            raise ValueError(f"multi_cue_delay needs vocab_size >= 2, got {vocab_size}")
        if not 1 <= num_cues <= presentation_len:
            raise ValueError(
                f"multi_cue_delay needs 1 <= num_cues <= presentation_len ({presentation_len}), got {num_cues}"
            )
        if horizon < self.min_horizon(num_cues=num_cues, presentation_len=presentation_len):
            raise ValueError(
                f"multi_cue_delay needs horizon >= presentation_len + num_cues = {presentation_len + num_cues}, "
                f"got {horizon}"
            )
        super().__init__(num_envs, device, seed)
        self.horizon = horizon
        self.vocab_size = vocab_size
        self.num_cues = num_cues
        self.presentation_len = presentation_len
        self.delay = horizon - presentation_len - num_cues
        self.query_start = horizon - num_cues
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # the presentation window: the cue token at a cue step, -1 at a blank step; the extra last
        # column stays -1 and is what the steps after the window look at
        self.window = torch.full((num_envs, presentation_len + 1), -1, dtype=torch.long, device=self.device)
        # the cues in order of appearance, then a -1 column that no action matches (no answer due)
        self.cues = torch.full((num_envs, num_cues + 1), -1, dtype=torch.long, device=self.device)
        self.num_correct = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.num_answers = self.num_cues
        steps = torch.arange(horizon + 1, device=self.device)
        querying = (steps >= self.query_start) & (steps < horizon)
        # phase 0 shows the window's token (the -1 column, nothing, once the window is over), phase 1
        # raises the query flag
        flags = torch.zeros(2, vocab_size + 1, device=self.device)
        flags[1, vocab_size] = 1.0
        self._observations = TokenObservations(
            flags, [(0, vocab_size), None], steps.clamp(max=presentation_len), querying.long()
        )
        self._answer_column = torch.where(querying, steps - self.query_start, num_cues)

    @property
    def observation_size(self) -> int:
        return self.vocab_size + 1

    @property
    def num_actions(self) -> int:
        return self.vocab_size

    def _reset_envs(self, mask: torch.Tensor) -> None:
        rows = redraw_rows(mask)
        if rows.shape[0] == 0:
            return
        count = rows.shape[0]
        steps = random_subsets(count, self.presentation_len, self.num_cues, self.generator, self.device)
        steps = steps.sort(dim=1).values
        cues = torch.randint(self.vocab_size, (count, self.num_cues), device=self.device, generator=self.generator)
        window = torch.full((count, self.presentation_len), -1, dtype=torch.long, device=self.device)
        window.scatter_(1, steps, cues)
        put_rows(self.window[:, : self.presentation_len], rows, mask, window)
        put_rows(self.cues[:, : self.num_cues], rows, mask, cues)
        self.t.masked_fill_(mask, 0)
        self.num_correct.masked_fill_(mask, 0)

    def _target(self) -> torch.Tensor:
        """The cue due now (`[N]`; -1, which no action matches, outside the query phase)."""
        return column_at(self.cues, self._answer_column, self.t)

    def _observe(self) -> torch.Tensor:
        return self._observations(self.window, self.t)

    @staticmethod
    def min_horizon(num_cues: int = 3, presentation_len: int = 10, **task_kwargs: int) -> int:
        """The shortest valid episode: the presentation window and the queries with no delay."""
        return presentation_len + num_cues

    @staticmethod
    def chance_level(horizon: int = 23, vocab_size: int = 8, num_cues: int = 3, presentation_len: int = 10) -> float:
        """Success rate of a uniform random policy: all `num_cues` answers right."""
        return float(vocab_size) ** -num_cues

    def oracle_action(self) -> torch.Tensor:
        return self._target().clamp(min=0)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"t": self.t, "window": self.window, "cues": self.cues, "num_correct": self.num_correct}
