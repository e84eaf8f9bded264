"""RolloutLedger: what an episodic store learns about its acting steps once the rollout's outcome is known.

A shared store cannot know, when it writes, how the episode will end or how good the step was. The
ledger keeps, for each acting step of a rollout (`[N]` env rows), the episode id of every row and
either the uids written at that step or the queries still to write (advantage-gated writes). After
GAE, `EpisodicMemory.end_rollout` asks the pure functions below:

- `gate_mask`: which steps pass the advantage gate (Infinity's `abs_adv` / `pos_adv`);
- `finished_returns`: the return of every episode that ended in the rollout (episodes carry over
  from one rollout to the next through `open_return`);
- `next_written`: for every written entry, the next written entry of the same env row and episode
  (consolidation's positive pair).

The ledger lives outside the recurrent state: it concerns the store's bookkeeping, never a read.
"""

from __future__ import annotations

from typing import Any

import torch

WRITE_GATES = ("none", "abs_adv", "pos_adv")


def gate_mask(advantages: torch.Tensor, gate: str, threshold: float, quantile: float | None) -> torch.Tensor:
    """`[T, N]` true where a step is written.

    `abs_adv` scores a step by `|A|`, `pos_adv` by `A` (and never writes `A <= 0`). A step passes when its
    score is above `threshold`, or, with `quantile` set, at or above that quantile of the rollout's scores.
    """
    if gate not in WRITE_GATES[1:]:
        raise ValueError(f"gate_mask needs a gate in {WRITE_GATES[1:]}, got {gate!r}")
    score = advantages.abs() if gate == "abs_adv" else advantages
    mask = score > threshold if quantile is None else score >= torch.quantile(score.flatten().float(), quantile)
    return mask & (advantages > 0) if gate == "pos_adv" else mask


def finished_returns(
    episodes: torch.Tensor, rewards: torch.Tensor, dones: torch.Tensor, open_return: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The returns of the episodes that ended in a rollout.

    Args:
        episodes: episode id of each step `[T, N]`.
        rewards: reward of each step `[T, N]`.
        dones: `[T, N]` true where the episode ended after that step (terminated or truncated).
        open_return: reward already collected `[N]` by each row's episode running at the rollout's start.

    Returns:
        `(ids [E], returns [E], open_return [N])`: the ended episodes, their returns, and the reward
        collected so far by the episode each row leaves running.
    """
    t = rewards.shape[0]
    total = open_return[None] + rewards.float().cumsum(0)  # [T, N] reward since the running episode began
    steps = torch.arange(t, device=rewards.device)[:, None].expand_as(dones)
    last_done = torch.where(dones, steps, -1).cummax(0).values  # [T, N] last end at or before t
    before = torch.cat([torch.full_like(last_done[:1], -1), last_done[:-1]])  # last end strictly before t
    base = torch.where(before >= 0, total.gather(0, before.clamp_min(0)), 0.0)
    returns = (total - base)[dones]
    ended = last_done[-1]
    still_open = torch.where(ended >= 0, total[-1] - total.gather(0, ended.clamp_min(0)[None])[0], total[-1])
    return episodes[dones], returns, still_open


def next_written(uids: torch.Tensor, episodes: torch.Tensor) -> torch.Tensor:
    """`[T, N]`: the uid of the next written entry of the same row and episode after each step (-1: none).

    Args:
        uids: uid written at each step `[T, N]` (-1 where nothing was written).
        episodes: episode id of each step `[T, N]`.
    """
    t = uids.shape[0]
    steps = torch.arange(t, device=uids.device)[:, None].expand_as(uids)
    written_at = torch.where(uids >= 0, steps, t)  # the first written step at or after s: a reverse cummin
    first_at_or_after = written_at.flip(0).cummin(0).values.flip(0)
    after = torch.cat([first_at_or_after[1:], torch.full_like(first_at_or_after[:1], t)])  # strictly after s
    found = after < t
    nxt = after.clamp_max(t - 1)
    same_episode = episodes.gather(0, nxt) == episodes
    return torch.where(found & same_episode, uids.gather(0, nxt), -1)


class RolloutLedger:
    """Per acting step of the running rollout: the episode id of each row, and what was (or is to be) written.

    Args:
        max_entries: the most step rows kept before `end_rollout` (the store's capacity); older steps are
            dropped, so acting outside a collector, which never ends its rollouts, does not grow without bound.
    """

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self.next_episode = torch.zeros((), dtype=torch.long)  # a tensor on the rows' device: no host sync per step
        self.row_episode: torch.Tensor | None = None  # [N] id of each row's running episode
        self.open_return: torch.Tensor | None = None  # [N] reward collected so far by it
        self.last_uid: torch.Tensor | None = None  # [N] the row's last written entry (a successor may follow)
        self.last_episode: torch.Tensor | None = None  # [N] that entry's episode
        self.steps: list[dict[str, torch.Tensor]] = []

    def episode_ids(self, reset: torch.Tensor) -> torch.Tensor:
        """`[N]` ids of the rows' episodes at this step: a fresh id where `reset` (every row, for a new set of rows)."""
        n = reset.shape[0]
        if self.row_episode is None or self.row_episode.shape[0] != n or self.row_episode.device != reset.device:
            self._start_rows(n, reset.device)
            reset = torch.ones_like(reset)
        counts = reset.long().cumsum(0)
        self.next_episode = self.next_episode.to(reset.device)
        self.row_episode = torch.where(reset, self.next_episode + counts - 1, self.row_episode)
        self.next_episode = self.next_episode + counts[-1]
        return self.row_episode

    def _start_rows(self, n: int, device: torch.device) -> None:
        self.row_episode = torch.full((n,), -1, dtype=torch.long, device=device)
        self.open_return = torch.zeros(n, device=device)
        self.last_uid = torch.full((n,), -1, dtype=torch.long, device=device)
        self.last_episode = torch.full((n,), -1, dtype=torch.long, device=device)
        self.steps = []

    def record(self, **step: torch.Tensor) -> None:
        """Keep one acting step's tensors (each `[N, ...]`)."""
        self.steps.append(step)
        rows = next(iter(step.values())).shape[0]
        if len(self.steps) * rows > self.max_entries:
            self.steps.pop(0)

    def take(
        self, num_steps: int, num_rows: int, *, pad: dict[str, int] | None = None
    ) -> list[dict[str, torch.Tensor]]:
        """The rollout's `num_steps` steps (the latest), leaving none.

        Steps dropped by the `max_entries` bound come back as `pad` (`name -> fill value`, for the steps
        whose entries the store has evicted anyway); without `pad` a short record is an error.
        """
        steps, self.steps = self.steps[-num_steps:], []
        rows = 0 if self.row_episode is None else self.row_episode.shape[0]
        if rows == num_rows and steps and pad is not None:
            device = self.row_episode.device
            fill = {k: torch.full((num_rows,), v, dtype=torch.long, device=device) for k, v in pad.items()}
            steps = [fill] * (num_steps - len(steps)) + steps
        if len(steps) != num_steps or rows != num_rows:
            raise RuntimeError(
                f"EpisodicMemory.end_rollout: the rollout has {num_steps} steps of {num_rows} envs, but the memory "
                f"recorded {len(steps)} acting steps of {rows} rows: gated writes need capacity >= num_envs * "
                "rollout_steps, and only the collector's acting steps (train mode, no grad) may act between two "
                "rollouts"
            )
        return steps

    # --- checkpointing (between rollouts nothing is pending) ---------------------------------------
    def state_dict(self) -> dict[str, Any]:
        names = ("row_episode", "open_return", "last_uid", "last_episode")
        return {"next_episode": self.next_episode, **{name: getattr(self, name) for name in names}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next_episode = torch.as_tensor(state["next_episode"], dtype=torch.long)
        for name in ("row_episode", "open_return", "last_uid", "last_episode"):
            setattr(self, name, state[name])
        self.steps = []
