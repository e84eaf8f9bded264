"""EpisodeClock: how many times each observation feature has been on in this episode, as sinusoidal codes.

A memory read by attention finds an entry by what its key holds. Some answers are named by no content:
copy_memory's i-th read wants the i-th written token, multi_cue_delay's i-th query the i-th cue,
permuted_copy's read of position p the write step p, delayed_cue's query the first step. What names
them is a count: of write flags, of read flags, of cues, of steps. The clock keeps, per env, the count
`c` of each observation feature, of their sum (how many features were on: any cue, whatever its token)
and of steps since the episode started, and codes each count as
`cos(w_f c), sin(w_f c)` over fixed frequencies `w_f`. Two codes match by a dot product exactly when
the counts agree, and "the count d earlier" is a fixed rotation of the code, a linear map: so the
memory's linear query and key projections can address the i-th event of a kind, or the step d back,
whatever the episode's length (a curriculum that lengthens the delay does not move these addresses,
unlike a learned logit per entry age).

The counts are the state (`[B, observation_size + 2]`), zeroed where an episode starts; a sequence
is a segmented cumulative sum, so `forward_step` T times equals `forward_sequence`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_memrl.errors import ConfigError


class EpisodeClock(nn.Module):
    """Per-episode counts of each observation feature, of their sum and of steps, coded by sinusoids and
    projected to `size`.

    Args:
        observation_size: features of an observation `D` (each is counted, and their sum, and the steps).
        size: width of the output code.
        num_frequencies: sinusoid frequencies per count.
        min_period: shortest period, in counts (resolves neighbouring counts).
        max_period: longest period, in counts (beyond it codes repeat).
    """

    def __init__(
        self,
        observation_size: int,
        size: int = 64,
        num_frequencies: int = 8,
        min_period: float = 3.0,
        max_period: float = 4096.0,
    ):
        super().__init__()
        if observation_size < 1 or size < 1 or num_frequencies < 1:
            raise ConfigError(
                f"EpisodeClock needs observation_size, size and num_frequencies >= 1, got "
                f"{observation_size}, {size}, {num_frequencies}"
            )
        if not 1.0 < min_period <= max_period:
            raise ConfigError(f"EpisodeClock needs 1 < min_period <= max_period, got {min_period}, {max_period}")
        self.observation_size = observation_size
        self.size = size
        periods = torch.logspace(math.log10(min_period), math.log10(max_period), num_frequencies)
        self.register_buffer("omega", 2 * math.pi / periods, persistent=False)
        self.proj = nn.Linear((observation_size + 2) * 2 * num_frequencies, size)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero counts `[B, D + 2]`."""
        return torch.zeros(batch_size, self.observation_size + 2, device=device)

    def _events(self, obs: torch.Tensor) -> torch.Tensor:
        """What a step adds to the counts: the observation, its sum and one step, `[..., D + 2]`."""
        return torch.cat([obs, obs.sum(-1, keepdim=True), torch.ones_like(obs[..., :1])], dim=-1)

    def code(self, counts: torch.Tensor) -> torch.Tensor:
        """`counts [..., D + 2]` -> `[..., size]`."""
        angles = counts.unsqueeze(-1) * self.omega
        return self.proj(torch.cat([angles.cos(), angles.sin()], dim=-1).flatten(-2))

    def forward_step(self, obs: torch.Tensor, counts: torch.Tensor, reset: torch.Tensor):
        """`obs [B, D]`, `counts [B, D + 2]`, `reset [B]` -> `(code [B, size], counts after this step)`."""
        counts = counts * ~reset[:, None] + self._events(obs)
        return self.code(counts), counts

    def forward_sequence(self, obs: torch.Tensor, counts: torch.Tensor, reset: torch.Tensor):
        """`obs [B, T, D]`, `counts [B, D + 2]`, `reset [B, T]` -> `(code [B, T, size], counts after step T-1)`."""
        events = self._events(obs)
        total = events.cumsum(1)
        steps = torch.arange(reset.shape[1], device=reset.device)
        last_reset = torch.where(reset, steps, -1).cummax(1).values  # [B, T]: the episode's first step, or -1
        before = torch.cat([torch.zeros_like(total[:, :1]), total[:, :-1]], 1)  # the cumulative sum before each step
        episode_start = before.gather(1, last_reset.clamp_min(0)[..., None].expand_as(total))
        carried = counts[:, None] * (last_reset < 0)[..., None]  # steps before any reset continue the carried counts
        counts_seq = total - episode_start + carried
        return self.code(counts_seq), counts_seq[:, -1]
