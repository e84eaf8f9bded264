"""Base for memories that write every step into a circular buffer and read it by attention.

The write does not depend on the memory's contents, so `forward_sequence` is parallel over T: a
step `t` reads the carried-in entries not yet overwritten and the entries written at steps `s < t`
of the same episode at most `capacity` steps back, under one attention mask. The final buffer is
gathered from the last writer of each slot. Resets clear the buffer and restart the pointer.

With `key_lag=1` the entry written at step `t` takes its key from the query of step `t - 1` (zero at
an episode's first step) and its value from step `t`: the memory stores "what followed what", so a
later query that matches an earlier step reads the step after it (the previous-token / induction
pattern a one-layer read cannot form otherwise). A list of lags, one per head (`[1, 1, 0, 0]`), gives
some heads the previous step's key and the others their own step's, in one memory.

With `age_bias=True` each head adds a learned logit per entry age (1 .. capacity steps back) to its
attention scores, the relative-position bias of T5-style attention, exact per step: a read that
always wants the step a fixed distance back (the i-th token of a copy, a cue at a fixed delay) learns
one number per head instead of a content match.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.base import Memory
from lightning_memrl.memory.functional import check_query, masked_softmax, normalized_entropy


class CircularBufferMemory(Memory):
    """A ring of `capacity` (key, value) entries per env, written every step, read by attention.

    State: `keys [B, N, heads, key_dim]`, `values [B, N, heads, value_dim]`, `valid [B, N]` (bool),
    `pointer [B]` (long, the next slot to write).

    Args:
        capacity: entries `N` kept per env (the memory reaches `N` steps back).
        num_heads: attention heads.
        key_dim: per-head width of stored keys.
        value_dim: per-head width of stored values.
        key_lag: 0 (key and value from the same step's query) or 1 (key from the previous step's
            query; the state then also carries `previous [B, H]`, the last query), or one such lag per
            head.
        age_bias: add a learned per-head logit for each entry age (steps since it was written,
            1 .. capacity) to the attention scores; starts at zero.
        age_bias_scale: the age logits are this times their parameters. Adam moves a parameter by
            about the learning rate per step, and a logit must reach about log(capacity) to single
            out one entry: at lr 1e-3 and scale 1 that takes thousands of updates.
    """

    def __init__(
        self,
        capacity: int,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        key_lag: int | Sequence[int] = 0,
        age_bias: bool = False,
        age_bias_scale: float = 10.0,
    ):
        super().__init__()
        if capacity < 1:
            raise ConfigError(f"{type(self).__name__} capacity must be >= 1, got {capacity}")
        head_lags = (key_lag,) * num_heads if isinstance(key_lag, int) else tuple(key_lag)
        if len(head_lags) != num_heads or any(lag not in (0, 1) for lag in head_lags):
            raise ConfigError(
                f"{type(self).__name__} key_lag must be 0 or 1, or a list of 0 / 1 per head ({num_heads} heads), "
                f"got {key_lag}"
            )
        if age_bias and not age_bias_scale > 0:
            raise ConfigError(f"{type(self).__name__} age_bias_scale must be > 0, got {age_bias_scale}")
        self.key_lag = int(any(head_lags))  # whether the previous step's query is kept
        self.head_lags = head_lags
        self.register_buffer("_lagged_heads", torch.tensor(head_lags, dtype=torch.bool)[:, None], persistent=False)
        self.capacity = capacity
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.age_bias = nn.Parameter(torch.zeros(num_heads, capacity)) if age_bias else None
        self.age_bias_scale = age_bias_scale
        self._attention: torch.Tensor | None = None
        self._fill: torch.Tensor | None = None

    # --- what subclasses define -----------------------------------------------------------------
    @abstractmethod
    def _entries(self, key_source: torch.Tensor, value_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What a step writes: queries `[..., H]` -> `(key [..., heads, key_dim], value [..., heads, value_dim])`.

        `key_source` is the step's own query, or with `key_lag=1` the previous step's."""

    @abstractmethod
    def _scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Attention logits: `query [B, T, H]`, stored `keys [B, M, heads, key_dim]` -> `[B, heads, T, M]`."""

    @abstractmethod
    def _output(self, read: torch.Tensor) -> torch.Tensor:
        """Map the attended values `[..., heads, value_dim]` to the read-out `[..., R]`."""

    # --- the contract ---------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        n, nh = self.capacity, self.num_heads
        state = {
            "keys": torch.zeros(batch_size, n, nh, self.key_dim, device=device),
            "values": torch.zeros(batch_size, n, nh, self.value_dim, device=device),
            "valid": torch.zeros(batch_size, n, dtype=torch.bool, device=device),
            "pointer": torch.zeros(batch_size, dtype=torch.long, device=device),
        }
        if self.key_lag:
            state["previous"] = torch.zeros(batch_size, self.query_size, device=device)
        return state

    def forward_step(self, query: torch.Tensor, state: dict[str, torch.Tensor], reset: torch.Tensor):
        check_query(query, self.query_size, 2, type(self).__name__)
        keys, values = state["keys"], state["values"]
        # A reset row reads nothing (its entries are masked out) and then writes at slot 0.
        valid = state["valid"] & ~reset[:, None]
        pointer = state["pointer"] * ~reset
        scores = self._scores(query.unsqueeze(1), keys)  # [B, nh, 1, N]
        if self.age_bias is not None:  # a one-step sequence: only its carried-buffer columns
            scores = scores + self._age_logits(pointer, 1)[..., : self.capacity]
        attn = masked_softmax(scores, valid[:, None, None, :])
        read = self._output(torch.einsum("bhn,bnhd->bhd", attn[:, :, 0], values))

        # One copy of the buffer, then an in-place write into the copy: the caller's state is left as it
        # was (the collector and `predict_value` reuse it), and no full-buffer arithmetic per step.
        previous = state["previous"] * ~reset[:, None] if self.key_lag else None
        key, value = self._keys_values(query, previous)
        new_state = {
            "keys": self._write(keys, reset, pointer, key),
            "values": self._write(values, reset, pointer, value),
            "valid": valid.scatter(1, pointer[:, None], True),
            "pointer": (pointer + 1) % self.capacity,
        }
        if self.key_lag:
            new_state["previous"] = query.to(state["previous"].dtype)  # the state keeps its dtype under autocast
        return read, new_state

    def _keys_values(self, query: torch.Tensor, previous: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """What the steps write: values from `query [..., H]`, each head's key from `query` or, for a lagged
        head, from `previous [..., H]` (the step before's query)."""
        if previous is None or all(self.head_lags):
            return self._entries(query if previous is None else previous, query)
        key, value = self._entries(query, query)
        lagged_key, _ = self._entries(previous, query)
        return torch.where(self._lagged_heads, lagged_key, key), value

    def _age_logits(self, pointer: torch.Tensor, t_len: int) -> torch.Tensor:
        """Age logits of the scores over [carried buffer ; the `t_len` steps' own entries] that a
        sequence starting at `pointer [B]` reads, `[B, heads, T, N + T]` (hidden entries get any value).

        Indexed through batch-independent tables, so the backward pass sums over the batch instead of
        scatter-adding B * T * (N + T) gradients into N parameters per head (atomics that serialise on a GPU).
        """
        n, device = self.capacity, pointer.device
        steps, slots = torch.arange(t_len, device=device), torch.arange(n, device=device)
        logits = self.age_bias_scale * self.age_bias  # [heads, N]: age a at index a - 1
        # A carried entry that was `rank` writes old at the sequence start (rank 0: the newest) has
        # age t + rank + 1 at step t; each row's slots are a permutation of the ranks.
        by_rank = logits[:, (steps[:, None] + slots).clamp(max=n - 1)]  # [heads, T, N]
        rank = (pointer[:, None] - 1 - slots) % n  # [B, N]
        b, heads = pointer.shape[0], logits.shape[0]
        carried = by_rank.expand(b, -1, -1, -1).gather(3, rank[:, None, None, :].expand(-1, heads, t_len, -1))
        in_sequence = logits[:, (steps[:, None] - steps - 1).clamp(0, n - 1)]  # [heads, T, T]: age t - s
        return torch.cat([carried, in_sequence.expand(b, -1, -1, -1)], -1)

    @staticmethod
    def _write(buffer: torch.Tensor, reset: torch.Tensor, pointer: torch.Tensor, entry: torch.Tensor) -> torch.Tensor:
        """`buffer [B, N, nh, d]` with the rows of `reset [B]` zeroed and `entry [B, nh, d]` at `pointer [B]`."""
        out = torch.where(reset[:, None, None, None], 0.0, buffer)  # the one copy
        index = pointer[:, None, None, None].expand(-1, 1, *buffer.shape[2:])
        return out.scatter_(1, index, entry.unsqueeze(1).to(out.dtype))

    def forward_sequence(self, query: torch.Tensor, state: dict[str, torch.Tensor], reset: torch.Tensor):
        check_query(query, self.query_size, 3, type(self).__name__)
        b, t_len = reset.shape
        n, device = self.capacity, query.device
        keys, values, valid, pointer = state["keys"], state["values"], state["valid"], state["pointer"]
        steps = torch.arange(t_len, device=device)
        slots = torch.arange(n, device=device)

        # 1. episode bookkeeping: episode index and the slot each step writes.
        episode = reset.long().cumsum(1)  # [B, T]; 0 = the episode carried in
        last_reset = torch.where(reset, steps, -1).cummax(1).values
        written_before = torch.where(last_reset >= 0, steps - last_reset, pointer[:, None] + steps)
        slot_of_step = written_before % n  # [B, T]

        # 2. who each step may read: carried slots until overwritten, in-sequence steps s < t <= s + N.
        overwritten_at = (slots[None] - pointer[:, None]) % n  # [B, N]
        see_carried = (episode == 0)[:, :, None] & valid[:, None, :] & (steps[None, :, None] <= overwritten_at[:, None])
        lag = steps[:, None] - steps[None, :]
        see_steps = (episode[:, :, None] == episode[:, None, :]) & (lag >= 1) & (lag <= n)
        visible = torch.cat([see_carried, see_steps], -1)  # [B, T, N + T]

        # 3. attention over [carried buffer ; this sequence's entries].
        previous = None
        if self.key_lag:  # step t's key from step t-1's query; zero at an episode's first step
            previous = torch.cat([state["previous"][:, None], query[:, :-1]], 1) * ~reset[..., None]
        key, value = self._keys_values(query, previous)  # [B, T, nh, d]
        scores = self._scores(query, torch.cat([keys, key], 1))
        if self.age_bias is not None:
            scores = scores + self._age_logits(pointer, t_len)
        attn = masked_softmax(scores, visible[:, None])
        read = self._output(torch.einsum("bhtm,bmhd->bthd", attn, torch.cat([values, value], 1)))

        # 4. final buffer: each slot's last writer in the last episode, else the carried entry if kept.
        in_last = episode == episode[:, -1:]
        writes = (slot_of_step[:, :, None] == slots) & in_last[:, :, None]  # [B, T, N]
        writer = torch.where(writes, steps[None, :, None], -1).amax(1)  # [B, N]
        has = writer >= 0
        keep = (episode[:, -1] == 0)[:, None] & ~has & valid
        index = writer.clamp_min(0)[:, :, None, None]
        new_keys = torch.where(has[..., None, None], key.gather(1, index.expand(-1, -1, *key.shape[2:])), keys)
        new_values = torch.where(has[..., None, None], value.gather(1, index.expand(-1, -1, *value.shape[2:])), values)
        keep_or_new = (has | keep)[..., None, None]
        new_state = {
            "keys": new_keys * keep_or_new,
            "values": new_values * keep_or_new,
            "valid": has | keep,
            "pointer": (written_before[:, -1] + 1) % n,
        }
        if self.key_lag:
            new_state["previous"] = query[:, -1].to(state["previous"].dtype)
        self._attention = attn.detach()
        self._fill = new_state["valid"].float().mean()
        return read, new_state

    def diagnostics(self) -> dict[str, torch.Tensor]:
        if self._attention is None:
            return {}
        stats = {
            "attention_entropy": normalized_entropy(self._attention).mean(),
            "attention_peak": self._attention.amax(-1).mean(),
            "fill": self._fill,
            "write_rate": torch.ones((), device=self._attention.device),
        }
        if self.age_bias is not None:  # how far the favourite age stands above the average one
            logits = self.age_bias_scale * self.age_bias.detach()
            stats["age_logit_peak"] = (logits.amax(-1) - logits.mean(-1)).mean()
        return stats


def scaled_dot(query_heads: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """`query_heads [B, T, nh, d]`, `keys [B, M, nh, d]` -> logits `[B, nh, T, M]` scaled by `1/sqrt(d)`."""
    return torch.einsum("bthd,bmhd->bhtm", query_heads, keys) / math.sqrt(query_heads.shape[-1])
