"""Fixed-length tasks scored answer by answer, with partial credit."""

from __future__ import annotations

from abc import abstractmethod

import torch

from lightning_memrl.envs.base import VectorTask


class ScoredAnswersTask(VectorTask):
    """A task whose episode lasts exactly `horizon` steps and asks for `num_answers` answers.

    Each step compares the action with `_target()` (the answer due now, or -1 where none is due):
    a right answer earns `1 / num_answers`, so an episode's return is the fraction answered right,
    and `success` means every answer was right. Subclasses keep `t` and `num_correct` (`[N]`, long)
    and set `num_answers`.
    """

    can_truncate = False  # fixed length: episodes terminate, never truncate
    fixed_length = True

    t: torch.Tensor
    num_correct: torch.Tensor
    num_answers: int

    @abstractmethod
    def _target(self) -> torch.Tensor:
        """The answer due at the current step (`[N]`; -1, which no action matches, where none is due)."""

    def _advance(self, actions: torch.Tensor):
        correct = actions == self._target()
        self.num_correct += correct
        self.t += 1
        done = self.t == self.horizon
        success = done & (self.num_correct == self.num_answers)
        return correct * (1.0 / self.num_answers), done, torch.zeros_like(done), success
