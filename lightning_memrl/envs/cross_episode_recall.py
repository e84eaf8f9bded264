"""Cross-episode recall: a pair is taught in one episode and asked in a later episode of the same env."""

from __future__ import annotations

import torch

from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.sampling import put_rows, redraw_rows


class CrossEpisodeRecall(VectorTask):
    """Learn a key/value pair in one episode, answer for it `lag` episodes later: memory across episodes.

    Every episode of an env teaches a new pair and asks for the value of the pair that env taught `lag`
    episodes before. A recurrent state that is reset at each episode start cannot know the answer; a
    memory that outlives episodes (an env-scoped episodic store) can. Keys are random vectors, so no two
    pairs share a key and no query repeats an earlier one exactly.

    - Episode: exactly `horizon` steps. Step 0 teaches (the teach flag, the new key, the new value's
      one-hot), steps 1 .. horizon-2 are blank, step horizon-1 asks (the query flag and the key taught
      `lag` episodes ago). The episode terminates after the action at the query step.
    - Observation `[2 + key_size + num_values]`: teach flag, query flag, key (in [0, 1)), value one-hot.
    - Actions: `num_values`; only the action at the query step matters.
    - Reward: 1 if the action at the query step is the asked pair's value, else 0.
    - Success: the query was answered right. Chance level: `1 / num_values`. The first `lag` episodes
      of an env ask for pairs it never showed (drawn at `reset`): no policy does better than chance there.

    Args:
        num_envs: number of environments stepped together.
        horizon: episode length in steps (>= 2).
        num_values: number of values (and actions).
        key_size: features of a key.
        lag: how many episodes before the asked pair was taught (>= 1).
        device: device of the task tensors.
        seed: seed of the task's generator.
    """

    can_truncate = False  # fixed length: episodes terminate, never truncate
    fixed_length = True

    def __init__(
        self,
        num_envs: int,
        horizon: int = 3,
        num_values: int = 4,
        key_size: int = 8,
        lag: int = 1,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ):
        if horizon < 2:
            raise ValueError(f"cross_episode_recall needs horizon >= 2 (teach step + query step), got {horizon}")
        if num_values < 2 or key_size < 1 or lag < 1:
            raise ValueError(
                f"cross_episode_recall needs num_values >= 2, key_size >= 1, lag >= 1; got {num_values}, "
                f"{key_size}, {lag}"
            )
        super().__init__(num_envs, device, seed)
        self.horizon, self.num_values, self.key_size, self.lag = horizon, num_values, key_size, lag
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # the pairs taught by each env, oldest first: the next episode asks for the oldest
        self.past_keys = torch.zeros(num_envs, lag, key_size, device=self.device)
        self.past_values = torch.zeros(num_envs, lag, dtype=torch.long, device=self.device)
        self.answer = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # each env's observations of this episode: row 0 blank, 1 teach, 2 query
        self.table = torch.zeros(num_envs, 3, self.observation_size, device=self.device)
        steps = torch.arange(horizon + 1, device=self.device)
        self._phase = torch.where(steps == 0, 1, torch.where(steps == horizon - 1, 2, 0))
        self._rows = torch.arange(num_envs, device=self.device)
        self._one_hot = torch.eye(num_values, device=self.device)  # indexing it reads nothing on the host

    @property
    def observation_size(self) -> int:
        return 2 + self.key_size + self.num_values

    @property
    def num_actions(self) -> int:
        return self.num_values

    def _draw_pairs(self, count: int, pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
        keys = torch.rand(count, pairs, self.key_size, device=self.device, generator=self.generator)
        values = torch.randint(self.num_values, (count, pairs), device=self.device, generator=self.generator)
        return keys, values

    def reset(self, seed: int | None = None):
        if seed is not None:
            self.generator.manual_seed(seed)
        # pairs "taught" before the first episode, never shown: what the first `lag` episodes ask for
        self.past_keys, self.past_values = self._draw_pairs(self.num_envs, self.lag)
        return super().reset(seed=None)

    def _reset_envs(self, mask: torch.Tensor) -> None:
        rows = redraw_rows(mask)
        if rows.shape[0] == 0:
            return
        count = rows.shape[0]
        new_key, new_value = self._draw_pairs(count, 1)
        asked_key, asked_value = self.past_keys[rows, 0], self.past_values[rows, 0]
        table = torch.zeros(count, 3, self.observation_size, device=self.device)
        table[:, 1, 0] = 1.0
        table[:, 1, 2 : 2 + self.key_size] = new_key[:, 0]
        table[:, 1, 2 + self.key_size :] = self._one_hot[new_value[:, 0]]
        table[:, 2, 1] = 1.0
        table[:, 2, 2 : 2 + self.key_size] = asked_key
        put_rows(self.table, rows, mask, table)
        put_rows(self.answer, rows, mask, asked_value)
        put_rows(self.past_keys, rows, mask, torch.cat([self.past_keys[rows, 1:], new_key], dim=1))
        put_rows(self.past_values, rows, mask, torch.cat([self.past_values[rows, 1:], new_value], dim=1))
        self.t.masked_fill_(mask, 0)

    def _advance(self, actions: torch.Tensor):
        at_query = self.t == self.horizon - 1
        correct = at_query & (actions == self.answer)
        self.t += 1
        return correct.float(), at_query, torch.zeros_like(at_query), correct

    def _observe(self) -> torch.Tensor:
        return self.table[self._rows, self._phase[self.t]]

    @staticmethod
    def chance_level(horizon: int = 3, num_values: int = 4, key_size: int = 8, lag: int = 1) -> float:
        """Success rate of a uniform random policy: one answer out of `num_values`."""
        return 1.0 / num_values

    @staticmethod
    def min_horizon(**task_kwargs: int) -> int:
        """A teach step and a query step."""
        return 2

    def oracle_action(self) -> torch.Tensor:
        return self.answer.clone()

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "t": self.t,
            "past_keys": self.past_keys,
            "past_values": self.past_values,
            "answer": self.answer,
            "table": self.table,
        }
