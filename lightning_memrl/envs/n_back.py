"""N-back: a stream of tokens; at every step name the token seen `n` steps earlier."""

from __future__ import annotations

import torch

from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.sampling import put_rows, redraw_rows
from lightning_memrl.envs.token_observations import TokenObservations, column_at


class NBack(VectorTask):
    """A stream of random tokens; from step `n` on, answer the token shown `n` steps before.

    - Episode: exactly `horizon` steps, one new uniform token shown per step. The episode
      terminates after the action at step horizon-1.
    - Observation `[vocab_size]`: the one-hot of the current token.
    - Actions: `vocab_size` discrete actions; at step t >= n the answer is the token of step t-n.
      Actions at steps t < n are ignored.
    - Reward: `1 / (horizon - n)` per correct answer (the return is the fraction right).
    - Success: all `horizon - n` answers right. Chance level: `vocab_size ** -(horizon - n)`.

    Args:
        num_envs: number of environments stepped together.
        horizon: episode length in steps (> n).
        vocab_size: number of distinct tokens (and actions).
        n: how many steps back the answer lies (>= 1).
        device: device of the task tensors.
        seed: seed of the task's generator.
    """

    can_truncate = False  # fixed length: episodes terminate, never truncate
    fixed_length = True

    def __init__(
        self,
        num_envs: int,
        horizon: int = 50,
        vocab_size: int = 8,
        n: int = 2,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ):
        if vocab_size < 2:
            raise ValueError(f"n_back needs vocab_size >= 2, got {vocab_size}")
        if n < 1:
            raise ValueError(f"n_back needs n >= 1, got {n}")
        if horizon < self.min_horizon(n=n):
            raise ValueError(f"n_back needs horizon > n = {n} (at least one answer), got {horizon}")
        super().__init__(num_envs, device, seed)
        self.horizon = horizon
        self.vocab_size = vocab_size
        self.n = n
        self.num_answers = horizon - n
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # ring buffer of the last n + 1 tokens (the token of step t sits in column t % (n + 1)), then a
        # -1 column that no action matches: the "answer" of the steps t < n
        self.recent = torch.full((num_envs, n + 2), -1, dtype=torch.long, device=self.device)
        self.num_correct = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        steps = torch.arange(horizon + 1, device=self.device)
        self._current_column = steps % (n + 1)
        self._answer_column = torch.where(steps >= n, (steps - n) % (n + 1), n + 1)
        # one phase: the current token's one-hot
        no_flags = torch.zeros(1, vocab_size, device=self.device)
        self._observations = TokenObservations(
            no_flags, [(0, vocab_size)], self._current_column, torch.zeros_like(steps)
        )

    @property
    def observation_size(self) -> int:
        return self.vocab_size

    @property
    def num_actions(self) -> int:
        return self.vocab_size

    def _draw_tokens(self, count: int) -> torch.Tensor:
        return torch.randint(self.vocab_size, (count,), device=self.device, generator=self.generator)

    def _reset_envs(self, mask: torch.Tensor) -> None:
        rows = redraw_rows(mask)
        if rows.shape[0] == 0:
            return
        put_rows(self.recent[:, 0], rows, mask, self._draw_tokens(rows.shape[0]))
        self.t.masked_fill_(mask, 0)
        self.num_correct.masked_fill_(mask, 0)

    def _target(self) -> torch.Tensor:
        """The token of step t-n (`[N]`; -1, which no action matches, for t < n)."""
        return column_at(self.recent, self._answer_column, self.t)

    def _advance(self, actions: torch.Tensor):
        correct = actions == self._target()
        self.num_correct += correct
        self.t += 1
        column = self._current_column.index_select(0, self.t).unsqueeze(1)
        self.recent.scatter_(1, column, self._draw_tokens(self.num_envs).unsqueeze(1))
        done = self.t == self.horizon
        success = done & (self.num_correct == self.num_answers)
        return correct * (1.0 / self.num_answers), done, torch.zeros_like(done), success

    def _observe(self) -> torch.Tensor:
        return self._observations(self.recent, self.t)

    @staticmethod
    def min_horizon(n: int = 2, **task_kwargs: int) -> int:
        """The shortest valid episode: one answer, at step n."""
        return n + 1

    @staticmethod
    def chance_level(horizon: int = 50, vocab_size: int = 8, n: int = 2) -> float:
        """Success rate of a uniform random policy: all `horizon - n` answers right."""
        return float(vocab_size) ** -(horizon - n)

    def oracle_action(self) -> torch.Tensor:
        return self._target().clamp(min=0)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"t": self.t, "recent": self.recent, "num_correct": self.num_correct}
