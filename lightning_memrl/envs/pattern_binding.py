"""Pattern binding: see pairs of token patterns (A -> B), then complete the B of a queried A."""

from __future__ import annotations

import torch

from lightning_memrl.envs.sampling import put_rows, random_subsets, redraw_rows
from lightning_memrl.envs.scored_answers import ScoredAnswersTask
from lightning_memrl.envs.token_observations import TokenObservations, column_at


class PatternBinding(ScoredAnswersTask):
    """Bind `num_patterns` cue patterns A_j to target patterns B_j; shown one A, reproduce its B.

    Patterns are `pattern_len` tokens long. The cue patterns A_j are distinct within an episode (so
    a query has one right answer); the targets B_j are uniform and independent.

    - Episode: exactly `horizon` steps. Presentation: A_1, B_1, A_2, B_2, ... one token per step
      (`2 * num_patterns * pattern_len` steps), then `delay = horizon - 2 * (num_patterns + 1) *
      pattern_len` blank steps, then the query: one A_q (chosen uniformly) over `pattern_len` steps,
      then `pattern_len` response steps. The episode terminates after the last response step.
    - Observation `[vocab_size + 4]`: the token one-hot (zeros when blank or responding), then the
      cue-pattern flag (an A token of the presentation), the target-pattern flag (a B token), the
      query flag (a token of A_q) and the response flag.
    - Actions: `vocab_size` discrete actions; at response step i the answer is token i of B_q.
      Actions at other steps are ignored.
    - Reward: `1 / pattern_len` per correct answer (the return is the fraction right).
    - Success: all of B_q right. Chance level: `vocab_size ** -pattern_len`.

    The presentation defaults (`num_patterns=1`, `pattern_len=3`, `horizon=22`) are the seed task's
    "A, B, delay 10, A + flag, respond B".

    Args:
        num_envs: number of environments stepped together.
        horizon: episode length in steps (>= 2 * (num_patterns + 1) * pattern_len).
        vocab_size: number of distinct tokens (and actions).
        pattern_len: tokens per pattern.
        num_patterns: A -> B pairs shown per episode (<= vocab_size ** pattern_len).
        device: device of the task tensors.
        seed: seed of the task's generator.
    """

    def __init__(
        self,
        num_envs: int,
        horizon: int = 22,
        vocab_size: int = 8,
        pattern_len: int = 3,
        num_patterns: int = 1,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ):
        if vocab_size < 2:
            raise ValueError(f"pattern_binding needs vocab_size >= 2, got {vocab_size}")
        if pattern_len < 1 or vocab_size**pattern_len >= 2**62:
            raise ValueError(
                f"pattern_binding needs pattern_len >= 1 and vocab_size ** pattern_len < 2**62, got "
                f"pattern_len={pattern_len}, vocab_size={vocab_size}"
            )
        if not 1 <= num_patterns <= vocab_size**pattern_len:
            raise ValueError(
                f"pattern_binding needs 1 <= num_patterns <= vocab_size ** pattern_len "
                f"({vocab_size**pattern_len}) so cue patterns can be distinct, got {num_patterns}"
            )
        minimum = self.min_horizon(pattern_len=pattern_len, num_patterns=num_patterns)
        if horizon < minimum:
            raise ValueError(
                f"pattern_binding needs horizon >= 2 * (num_patterns + 1) * pattern_len = {minimum}, got {horizon}"
            )
        super().__init__(num_envs, device, seed)
        self.horizon = horizon
        self.vocab_size = vocab_size
        self.pattern_len = pattern_len
        self.num_patterns = num_patterns
        self.presentation_len = 2 * num_patterns * pattern_len
        self.delay = horizon - minimum
        self.query_start = self.presentation_len + self.delay
        self.response_start = self.query_start + pattern_len
        self._digits = vocab_size ** torch.arange(pattern_len, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # A_1 B_1 ... A_M B_M token by token, then the queried A_q
        self.tape = torch.zeros(num_envs, self.presentation_len + pattern_len, dtype=torch.long, device=self.device)
        # B_q, then a -1 column that no action matches (no answer due)
        self.answer = torch.full((num_envs, pattern_len + 1), -1, dtype=torch.long, device=self.device)
        self.num_correct = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.num_answers = self.pattern_len
        self._build_schedule()

    def _build_schedule(self) -> None:
        """Per-step lookup tables (indexed by t in 0 .. horizon), so a step does no phase arithmetic."""
        steps = torch.arange(self.horizon + 1, device=self.device)
        presenting = steps < self.presentation_len
        querying = (steps >= self.query_start) & (steps < self.response_start)
        responding = (steps >= self.response_start) & (steps < self.horizon)
        is_cue = presenting & ((steps // self.pattern_len) % 2 == 0)
        # phases 0 blank, 1 cue pattern, 2 target pattern, 3 query, 4 response: each raises its flag
        # (columns vocab_size + phase - 1); phases 1-3 show a token of the tape
        phase = torch.zeros_like(steps)
        for index, in_phase in enumerate([is_cue, presenting & ~is_cue, querying, responding], start=1):
            phase[in_phase] = index
        flags = torch.zeros(5, self.vocab_size + 4, device=self.device)
        flags[1:, self.vocab_size :].fill_diagonal_(1.0)
        query_column = (steps - self.query_start).clamp(0, self.pattern_len - 1) + self.presentation_len
        self._observations = TokenObservations(
            flags, [None, *[(0, self.vocab_size)] * 3, None], torch.where(presenting, steps, query_column), phase
        )
        self._answer_column = torch.where(responding, steps - self.response_start, self.pattern_len)

    @property
    def observation_size(self) -> int:
        return self.vocab_size + 4

    @property
    def num_actions(self) -> int:
        return self.vocab_size

    def _distinct_patterns(self, count: int) -> torch.Tensor:
        """`[count, num_patterns, pattern_len]` patterns, distinct within each row, in random order."""
        # distinct codes in [0, V**L): sorted draws from [0, V**L - M] plus their rank are strictly increasing
        space = self.vocab_size**self.pattern_len - self.num_patterns + 1
        draws = torch.randint(space, (count, self.num_patterns), device=self.device, generator=self.generator)
        codes = draws.sort(dim=1).values + torch.arange(self.num_patterns, device=self.device)
        shuffle = random_subsets(count, self.num_patterns, self.num_patterns, self.generator, self.device)
        codes = codes.gather(1, shuffle)
        return codes.unsqueeze(2) // self._digits % self.vocab_size

    def _reset_envs(self, mask: torch.Tensor) -> None:
        rows = redraw_rows(mask)
        if rows.shape[0] == 0:
            return
        count, pairs, length = rows.shape[0], self.num_patterns, self.pattern_len
        cues = self._distinct_patterns(count)
        targets = torch.randint(self.vocab_size, (count, pairs, length), device=self.device, generator=self.generator)
        query = torch.randint(pairs, (count, 1, 1), device=self.device, generator=self.generator).expand(-1, 1, length)
        presentation = torch.stack([cues, targets], dim=2).reshape(count, 2 * pairs * length)
        tape = torch.cat([presentation, cues.gather(1, query).squeeze(1)], dim=1)
        put_rows(self.tape, rows, mask, tape)
        put_rows(self.answer[:, :length], rows, mask, targets.gather(1, query).squeeze(1))
        self.t.masked_fill_(mask, 0)
        self.num_correct.masked_fill_(mask, 0)

    def _target(self) -> torch.Tensor:
        """The token due now (`[N]`; -1, which no action matches, outside the response phase)."""
        return column_at(self.answer, self._answer_column, self.t)

    def _observe(self) -> torch.Tensor:
        return self._observations(self.tape, self.t)

    @staticmethod
    def min_horizon(pattern_len: int = 3, num_patterns: int = 1, **task_kwargs: int) -> int:
        """The shortest valid episode: presentation, query and response with no delay."""
        return 2 * (num_patterns + 1) * pattern_len

    @staticmethod
    def chance_level(horizon: int = 22, vocab_size: int = 8, pattern_len: int = 3, num_patterns: int = 1) -> float:
        """Success rate of a uniform random policy: all `pattern_len` answers right."""
        return float(vocab_size) ** -pattern_len

    def oracle_action(self) -> torch.Tensor:
        return self._target().clamp(min=0)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"t": self.t, "tape": self.tape, "answer": self.answer, "num_correct": self.num_correct}
