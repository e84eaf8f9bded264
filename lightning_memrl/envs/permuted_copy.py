"""Permuted copy: watch a token sequence, then write it back in an order named at read time."""

from __future__ import annotations

import torch

from lightning_memrl.envs.sampling import put_rows, random_subsets, redraw_rows
from lightning_memrl.envs.scored_answers import ScoredAnswersTask
from lightning_memrl.envs.token_observations import TokenObservations, column_at


class PermutedCopy(ScoredAnswersTask):
    """Watch `seq_len` random tokens, wait, then output them in a random order shown one index at a time.

    - Episode: exactly `horizon` steps. Steps 0 .. seq_len-1 show the tokens (write phase), then
      `delay = horizon - 2 * seq_len` blank steps, then `seq_len` read steps. Read step i shows the
      position `p[i]`, where `p` is a uniformly random permutation drawn per episode. The episode
      terminates after the action at the last read step.
    - Observation `[vocab_size + 2 + seq_len]`: the token one-hot during the write phase, the write
      flag, the read flag, then the one-hot of the requested position `p[i]` at read step i.
    - Actions: `vocab_size` discrete actions; at read step i the answer is token `p[i]`. Actions at
      other steps are ignored.
    - Reward: `1 / seq_len` per correct answer (the return is the fraction of tokens right).
    - Success: every answer right. Chance level: `vocab_size ** -seq_len`.

    Args:
        num_envs: number of environments stepped together.
        horizon: episode length in steps (>= 2 * seq_len).
        vocab_size: number of distinct tokens (and actions).
        seq_len: tokens to copy.
        device: device of the task tensors.
        seed: seed of the task's generator.
    """

    def __init__(
        self,
        num_envs: int,
        horizon: int = 30,
        vocab_size: int = 8,
        seq_len: int = 10,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ):
        if vocab_size < 2:
            raise ValueError(f"permuted_copy needs vocab_size >= 2, got {vocab_size}")
        if seq_len < 1:
            raise ValueError(f"permuted_copy needs seq_len >= 1, got {seq_len}")
        if horizon < self.min_horizon(seq_len=seq_len):
            raise ValueError(
                f"permuted_copy needs horizon >= 2 * seq_len = {2 * seq_len} (write + read phases), got {horizon}"
            )
        super().__init__(num_envs, device, seed)
        self.horizon = horizon
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.delay = horizon - 2 * seq_len
        self.read_start = seq_len + self.delay
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # the tokens, then the requested positions p[i] of the read steps: one tape, which the
        # observations read (the write phase shows a token, a read step its requested position)
        self._tape = torch.zeros(num_envs, 2 * seq_len, dtype=torch.long, device=self.device)
        self.sequence = self._tape[:, :seq_len]
        self.order = self._tape[:, seq_len:]
        # the answers sequence[p[i]], then a -1 column that no action matches (no answer due)
        self.answers = torch.full((num_envs, seq_len + 1), -1, dtype=torch.long, device=self.device)
        self.num_correct = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.num_answers = self.seq_len
        self._build_schedule()

    def _build_schedule(self) -> None:
        """Per-step lookup tables (indexed by t in 0 .. horizon), so a step does no phase arithmetic."""
        steps = torch.arange(self.horizon + 1, device=self.device)
        vocab, length = self.vocab_size, self.seq_len
        writing = steps < length
        reading = (steps >= self.read_start) & (steps < self.horizon)
        read_index = (steps - self.read_start).clamp(0, length - 1)
        # phases 0 write (token one-hot, write flag), 1 delay, 2 read (read flag, position one-hot)
        flags = torch.zeros(3, self.observation_size, device=self.device)
        flags[0, vocab] = flags[2, vocab + 1] = 1.0
        self._observations = TokenObservations(
            flags,
            [(0, vocab), None, (vocab + 2, length)],
            torch.where(reading, length + read_index, steps.clamp(max=length - 1)),
            torch.where(writing, 0, torch.where(reading, 2, 1)),
        )
        self._answer_column = torch.where(reading, read_index, length)

    @property
    def observation_size(self) -> int:
        return self.vocab_size + 2 + self.seq_len

    @property
    def num_actions(self) -> int:
        return self.vocab_size

    def _reset_envs(self, mask: torch.Tensor) -> None:
        rows = redraw_rows(mask)
        if rows.shape[0] == 0:
            return
        count = rows.shape[0]
        sequence = torch.randint(self.vocab_size, (count, self.seq_len), device=self.device, generator=self.generator)
        order = random_subsets(count, self.seq_len, self.seq_len, self.generator, self.device)
        put_rows(self.sequence, rows, mask, sequence)
        put_rows(self.order, rows, mask, order)
        put_rows(self.answers[:, : self.seq_len], rows, mask, sequence.gather(1, order))
        self.t.masked_fill_(mask, 0)
        self.num_correct.masked_fill_(mask, 0)

    def _target(self) -> torch.Tensor:
        """The token due now (`[N]`; -1, which no action matches, outside the read phase)."""
        return column_at(self.answers, self._answer_column, self.t)

    def _observe(self) -> torch.Tensor:
        return self._observations(self._tape, self.t)

    @staticmethod
    def min_horizon(seq_len: int = 10, **task_kwargs: int) -> int:
        """The shortest valid episode: the write and read phases with no delay."""
        return 2 * seq_len

    @staticmethod
    def chance_level(horizon: int = 30, vocab_size: int = 8, seq_len: int = 10) -> float:
        """Success rate of a uniform random policy: every one of `seq_len` answers right."""
        return float(vocab_size) ** -seq_len

    def oracle_action(self) -> torch.Tensor:
        return self._target().clamp(min=0)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "t": self.t,
            "sequence": self.sequence,
            "order": self.order,
            "answers": self.answers,
            "num_correct": self.num_correct,
        }
