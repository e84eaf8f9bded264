"""Associative recall: see key/value pairs, then name the value of one queried key."""

from __future__ import annotations

import torch

from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.sampling import put_rows, random_subsets, redraw_rows
from lightning_memrl.envs.token_observations import TokenObservations


class AssociativeRecall(VectorTask):
    """See `num_pairs` key/value pairs, wait, then answer the value paired with a queried key.

    Keys are distinct within an episode, so every query has exactly one right answer; values are
    drawn independently and may repeat.

    - Episode: exactly `horizon` steps. Step 2j shows key j, step 2j+1 its value (j < num_pairs),
      then `delay = horizon - 2 * num_pairs - 1` blank steps, then the query step (the last) shows
      one of the keys, chosen uniformly. The episode terminates after the action at the query step.
    - Observation `[vocab_size + 3]`: the item one-hot (key, value or queried key; zeros when blank),
      then the key flag, the value flag and the query flag.
    - Actions: `vocab_size` discrete actions; only the action at the query step matters.
    - Reward: 1 if the action at the query step is the queried key's value, else 0.
    - Success: the query was answered right. Chance level: `1 / vocab_size`.

    Args:
        num_envs: number of environments stepped together.
        horizon: episode length in steps (>= 2 * num_pairs + 1).
        vocab_size: number of distinct items (keys and values share it; also the number of actions).
        num_pairs: key/value pairs per episode (<= vocab_size, keys are distinct).
        device: device of the task tensors.
        seed: seed of the task's generator.
    """

    can_truncate = False  # fixed length: episodes terminate, never truncate
    fixed_length = True

    def __init__(
        self,
        num_envs: int,
        horizon: int = 19,
        vocab_size: int = 8,
        num_pairs: int = 4,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ):
        if vocab_size < 2:
            raise ValueError(f"associative_recall needs vocab_size >= 2, got {vocab_size}")
        if not 1 <= num_pairs <= vocab_size:
            raise ValueError(
                f"associative_recall needs 1 <= num_pairs <= vocab_size ({vocab_size}) so keys can be "
                f"distinct, got num_pairs={num_pairs}; raise vocab_size or lower num_pairs"
            )
        if horizon < self.min_horizon(num_pairs=num_pairs):
            raise ValueError(
                f"associative_recall needs horizon >= 2 * num_pairs + 1 = {2 * num_pairs + 1}, got {horizon}"
            )
        super().__init__(num_envs, device, seed)
        self.horizon = horizon
        self.vocab_size = vocab_size
        self.num_pairs = num_pairs
        self.delay = horizon - 2 * num_pairs - 1
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # keys and values interleaved (k0, v0, k1, v1, ...), then the queried key in the last column
        self.tape = torch.zeros(num_envs, 2 * num_pairs + 1, dtype=torch.long, device=self.device)
        self.answer = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self._build_schedule()

    def _build_schedule(self) -> None:
        """Per-step lookup tables (indexed by t in 0 .. horizon), so a step does no phase arithmetic."""
        steps = torch.arange(self.horizon + 1, device=self.device)
        presenting = steps < 2 * self.num_pairs
        at_query = steps == self.horizon - 1
        # phases 0 blank, 1 key, 2 value, 3 query: each but the blank shows an item and raises its flag
        # (column vocab_size + phase - 1)
        phase = torch.where(presenting, 1 + steps % 2, torch.where(at_query, 3, 0))
        vocab = self.vocab_size
        flags = torch.zeros(4, vocab + 3, device=self.device)
        flags[1:, vocab:].fill_diagonal_(1.0)
        self._observations = TokenObservations(
            flags, [None, *[(0, vocab)] * 3], torch.where(presenting, steps, 2 * self.num_pairs), phase
        )

    @property
    def observation_size(self) -> int:
        return self.vocab_size + 3

    @property
    def num_actions(self) -> int:
        return self.vocab_size

    def _reset_envs(self, mask: torch.Tensor) -> None:
        rows = redraw_rows(mask)
        if rows.shape[0] == 0:
            return
        count, pairs = rows.shape[0], self.num_pairs
        keys = random_subsets(count, self.vocab_size, pairs, self.generator, self.device)
        values = torch.randint(self.vocab_size, (count, pairs), device=self.device, generator=self.generator)
        query = torch.randint(pairs, (count, 1), device=self.device, generator=self.generator)
        tape = torch.stack([keys, values], dim=2).reshape(count, 2 * pairs)
        tape = torch.cat([tape, keys.gather(1, query)], dim=1)
        put_rows(self.tape, rows, mask, tape)
        put_rows(self.answer, rows, mask, values.gather(1, query).squeeze(1))
        self.t.masked_fill_(mask, 0)

    def _advance(self, actions: torch.Tensor):
        at_query = self.t == self.horizon - 1
        correct = at_query & (actions == self.answer)
        self.t += 1
        return correct.float(), at_query, torch.zeros_like(at_query), correct

    def _observe(self) -> torch.Tensor:
        return self._observations(self.tape, self.t)

    @staticmethod
    def min_horizon(num_pairs: int = 4, **task_kwargs: int) -> int:
        """The shortest valid episode: the pairs and the query with no delay."""
        return 2 * num_pairs + 1

    @staticmethod
    def chance_level(horizon: int = 19, vocab_size: int = 8, num_pairs: int = 4) -> float:
        """Success rate of a uniform random policy: one answer out of `vocab_size`."""
        return 1.0 / vocab_size

    def oracle_action(self) -> torch.Tensor:
        return self.answer.clone()

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"t": self.t, "tape": self.tape, "answer": self.answer}
