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
one number per head instead of a content match. With `age_slope=True` each head also learns one slope on
log(age), shared by every age: the ages a training horizon never showed (their own logits still at their
start) follow the trend of those it did.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.base import Memory
from lightning_memrl.memory.functional import check_query, normalized_entropy
from lightning_memrl.ops.step_attention import hidden_floor, newest_entries_read, step_attention

#: sequences of a minibatch whose attention `diagnostics` summarises
DIAGNOSTIC_SEQUENCES = 2


class CircularBufferMemory(Memory):
    """A ring of `capacity` (key, value) entries per env, written every step, read by attention.

    State: `keys [B, N, heads, key_dim]`, `values [B, N, heads, value_dim]`, `valid [B, N]` (bool: what a
    read may see; a reset clears it and leaves the entries until they are overwritten), `pointer [B]` (long,
    the next slot to write).

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
        age_slope: with `age_bias`, add a learned per-head slope times log(age) to the age logits (starts at
            zero). The per-age logits learn only the ages that training showed, and ages no episode yet reached
            keep their starting logit, above the ones pushed down: when a curriculum lengthens the episodes,
            those old entries take the read's weight from the one it wants. The slope, shared by every age,
            carries the trend over to them.
        age_bias_ages: with `age_bias`, only this many youngest ages get a logit of their own; older entries
            share the oldest one's (`None`: every age up to `capacity`). A logit per age far back addresses a
            distant entry by its distance, which moves whenever the delay does: a read trained to find a
            presentation 120-140 steps back finds nothing 270-300 back, and a curriculum that lengthens the
            delay makes it re-learn every stage. Capped, the far reads go by content and the episode clock,
            which do not move with the delay, and "the step k back" stays for short k.
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
        age_slope: bool = False,
        age_bias_ages: int | None = None,
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
        if age_slope and not age_bias:
            raise ConfigError(f"{type(self).__name__} age_slope shapes the age logits: set age_bias: true with it")
        if age_bias_ages is not None and not (age_bias and 1 <= age_bias_ages <= capacity):
            raise ConfigError(
                f"{type(self).__name__} age_bias_ages must be between 1 and capacity ({capacity}) with age_bias: true, "
                f"got {age_bias_ages} (age_bias {age_bias})"
            )
        self.key_lag = int(any(head_lags))  # whether the previous step's query is kept
        self.head_lags = head_lags
        self.register_buffer("_lagged_heads", torch.tensor(head_lags, dtype=torch.bool)[:, None], persistent=False)
        self.capacity = capacity
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.age_bias_ages = capacity if age_bias_ages is None else age_bias_ages
        self.age_bias = nn.Parameter(torch.zeros(num_heads, self.age_bias_ages)) if age_bias else None
        self.age_slope = nn.Parameter(torch.zeros(num_heads)) if age_slope else None
        log_ages = torch.arange(1, capacity + 1, dtype=torch.float32).log()
        self.register_buffer("_log_ages", log_ages, persistent=False)
        self.age_bias_scale = age_bias_scale
        self._attention: torch.Tensor | None = None
        self._fill: torch.Tensor | None = None
        self._in_place = False  # inside `write_in_place()`
        self._final_state_discarded = False  # inside `discard_final_state()`

    # --- what subclasses define -----------------------------------------------------------------
    @abstractmethod
    def _entries(self, key_source: torch.Tensor, value_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What a step writes: queries `[..., H]` -> `(key [..., heads, key_dim], value [..., heads, value_dim])`.

        `key_source` is the step's own query, or with `key_lag=1` the previous step's."""

    @abstractmethod
    def _query_heads(self, query: torch.Tensor) -> torch.Tensor:
        """The read's per-head queries, scale included: `query [B, T, H]` -> `[B, T, heads, key_dim]`, whose dot
        product with a stored key is the attention logit."""

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
        # A reset row reads nothing (its entries are masked out, left where they are until overwritten) and
        # then writes at slot 0.
        valid = state["valid"] & ~reset[:, None]
        pointer = state["pointer"] * ~reset
        ages = self.age_logits()
        heads = self._query_heads(query.unsqueeze(1))[:, 0]  # [B, nh, dk]
        read = self._output(step_attention(heads, keys, values, valid, ages, pointer))

        # The new entry into a copy of the buffer: the caller's state is left as it was (`predict_value`
        # peeks from it); inside `write_in_place()` into the buffer itself, no copy at all.
        previous = state["previous"] * ~reset[:, None] if self.key_lag else None
        key, value = self._keys_values(query, previous)
        new_state = {
            "keys": self._write(keys, pointer, key),
            "values": self._write(values, pointer, value),
            "valid": valid.scatter(1, pointer[:, None], True),
            "pointer": (pointer + 1) % self.capacity,
        }
        if self.key_lag:
            new_state["previous"] = query.to(state["previous"].dtype)  # the state keeps its dtype under autocast
        return read, new_state

    def age_logits(self) -> torch.Tensor | None:
        """The age logits `[heads, N]` (age `a` at index `a - 1`), or None without `age_bias`."""
        if self.age_bias is None:
            return None
        logits = self.age_bias
        if self.age_bias_ages < self.capacity:  # the older ages share the oldest own logit
            logits = torch.cat([logits, logits[:, -1:].expand(-1, self.capacity - self.age_bias_ages)], 1)
        if self.age_slope is not None:
            logits = logits + self.age_slope[:, None] * self._log_ages
        return self.age_bias_scale * logits

    def _keys_values(self, query: torch.Tensor, previous: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """What the steps write: values from `query [..., H]`, each head's key from `query` or, for a lagged
        head, from `previous [..., H]` (the step before's query)."""
        if previous is None or all(self.head_lags):
            return self._entries(query if previous is None else previous, query)
        key, value = self._entries(query, query)
        lagged_key, _ = self._entries(previous, query)
        return torch.where(self._lagged_heads, lagged_key, key), value

    def _sequence_age_logits(self, t_len: int, ranks: int | None = None) -> torch.Tensor:
        """Age logits of the scores over [the `ranks` newest carried entries (default all N) ; the `t_len`
        steps' own entries], `[heads, T, ranks + T]`, the same for every sequence (entries a step cannot
        see get any value).

        Both parts are sliding windows over the `[heads, N]` table (`unfold`): carried rank `r` is `t + r + 1`
        steps old at step `t`, the sequence's step `s` is `t - s` old. Batch-independent and built without
        an index, so the backward pass sums over the batch and folds the windows back into the N parameters
        per head, instead of scattering B * T * (N + T) adds into them.
        """
        n = self.capacity
        logits = self.age_logits()  # [heads, N]: age a at index a - 1
        oldest = logits[:, -1:]
        # carried: window t of [ages 1 .. N, then N repeated] starts at age t + 1
        ranks = n if ranks is None else ranks
        carried = torch.cat([logits, oldest.expand(-1, t_len)], 1).unfold(1, n, 1)[:, :t_len, :ranks]
        # in the sequence: [ages min(T, N) .. 1 reversed, then zeros] read from T - t gives age t - s at s < t
        recent = torch.cat([logits, oldest.expand(-1, max(t_len - n, 0))], 1)[:, :t_len].flip(1)
        in_sequence = torch.cat([recent, torch.zeros_like(recent)], 1).unfold(1, t_len, 1)[:, 1:].flip(1)
        return torch.cat([carried, in_sequence], -1)

    def write_in_place(self) -> AbstractContextManager:
        """`forward_step` writes its entry into the given buffers instead of copies (see `Memory`)."""
        return self._flagged("_in_place")

    def discard_final_state(self) -> AbstractContextManager:
        """`forward_sequence` returns no state: the buffers after the last step are not gathered (see `Memory`)."""
        return self._flagged("_final_state_discarded")

    @contextmanager
    def _flagged(self, flag: str) -> Iterator[None]:
        setattr(self, flag, True)
        try:
            yield
        finally:
            setattr(self, flag, False)

    def _write(self, buffer: torch.Tensor, pointer: torch.Tensor, entry: torch.Tensor) -> torch.Tensor:
        """`buffer [B, N, nh, d]` with `entry [B, nh, d]` at `pointer [B]`: a copy, or `buffer` itself in place."""
        out = buffer if self._in_place else buffer.clone()
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

        # 2. the carried entries newest first: rank r was written r + 1 steps before the sequence, sits in
        # slot (pointer - 1 - r) % N and is overwritten at step N - 1 - r. In this order an entry's age and
        # whether it is still there depend on (t, r) alone, the same for every sequence.
        slot_of_rank = (pointer[:, None] - 1 - slots) % n  # [B, N]
        still_there = steps[:, None] + slots < n  # [T, N]
        see_carried = (episode == 0)[:, :, None] & valid.gather(1, slot_of_rank)[:, None, :] & still_there
        # Only the newest ranks that some step of some sequence sees are read: episodes shorter than the
        # capacity leave the older ranks hidden from every step (their weight would be exactly 0).
        ranks = newest_entries_read(see_carried, n)
        slot_of_rank, see_carried = slot_of_rank[:, :ranks], see_carried[..., :ranks]
        carried_keys = keys.gather(1, slot_of_rank[..., None, None].expand(-1, -1, *keys.shape[2:]))
        carried_values = values.gather(1, slot_of_rank[..., None, None].expand(-1, -1, *values.shape[2:]))
        lag = steps[:, None] - steps[None, :]
        see_steps = (episode[:, :, None] == episode[:, None, :]) & (lag >= 1) & (lag <= n)
        visible = torch.cat([see_carried, see_steps], -1)  # [B, T, N + T]

        # 3. attention over [carried entries ; this sequence's entries].
        previous = None
        if self.key_lag:  # step t's key from step t-1's query; zero at an episode's first step
            previous = torch.cat([state["previous"][:, None], query[:, :-1]], 1) * ~reset[..., None]
        key, value = self._keys_values(query, previous)  # [B, T, nh, d]
        heads = self._query_heads(query)  # [B, T, nh, dk]
        all_keys, all_values = torch.cat([carried_keys, key], 1), torch.cat([carried_values, value], 1)
        # One fused attention call (memory-efficient kernel on CUDA: the [B, nh, T, N + T] weights are never
        # stored), what is hidden pushed below by a finite floor; a step that sees nothing (a uniform row
        # over the floor) is zeroed in the read.
        bias = torch.zeros((), dtype=heads.dtype, device=device)
        if self.age_bias is not None:
            bias = self._sequence_age_logits(t_len, ranks).to(heads.dtype)
        bias = torch.where(visible[:, None], bias, hidden_floor(heads.dtype))
        bias = bias.expand(b, self.num_heads, t_len, ranks + t_len)
        attended = F.scaled_dot_product_attention(
            heads.transpose(1, 2), all_keys.transpose(1, 2), all_values.transpose(1, 2), attn_mask=bias, scale=1.0
        ).transpose(1, 2)  # [B, T, nh, dv]
        sees = visible.any(-1)  # [B, T]
        read = self._output(attended * sees[..., None, None])
        with torch.no_grad():  # the attention statistics of a few sequences, recomputed: cheap every minibatch
            sample = slice(0, DIAGNOSTIC_SEQUENCES)
            scores = dot_logits(heads[sample], all_keys[sample]) + bias[sample]
            self._attention = scores.softmax(-1) * sees[sample, None, :, None]
        self._fill = valid.float().mean()
        if self._final_state_discarded:
            return read, None

        # 4. final buffer, as the steps leave it: each slot holds its last writer's entry (of any episode),
        # else the carried one; valid are the slots written in the last episode, and the carried valid
        # ones not overwritten when the sequence had no reset. A reset hides entries, it does not erase them.
        writes = slot_of_step[:, :, None] == slots  # [B, T, N]
        writer = torch.where(writes, steps[None, :, None], -1).amax(1)  # [B, N]
        in_last = episode == episode[:, -1:]
        written_in_last = (writes & in_last[:, :, None]).any(1)  # [B, N]
        written = writer >= 0
        keep = (episode[:, -1] == 0)[:, None] & ~written & valid
        index = writer.clamp_min(0)[:, :, None, None]
        new_keys = torch.where(written[..., None, None], key.gather(1, index.expand(-1, -1, *key.shape[2:])), keys)
        new_values = torch.where(
            written[..., None, None], value.gather(1, index.expand(-1, -1, *value.shape[2:])), values
        )
        new_state = {
            "keys": new_keys,
            "values": new_values,
            "valid": written_in_last | keep,
            "pointer": (written_before[:, -1] + 1) % n,
        }
        if self.key_lag:
            new_state["previous"] = query[:, -1].to(state["previous"].dtype)
        return read, new_state

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """Attention entropy and peak over the first `DIAGNOSTIC_SEQUENCES` sequences of the last
        `forward_sequence` (steps that saw no entry count as 0), the fill of the buffers it started from (the share
        of valid slots) and the write rate."""
        if self._attention is None:
            return {}
        stats = {
            "attention_entropy": normalized_entropy(self._attention).mean(),
            "attention_peak": self._attention.amax(-1).mean(),
            "fill": self._fill,
            "write_rate": torch.ones((), device=self._attention.device),
        }
        if self.age_bias is not None:  # how far the favourite age stands above the average one
            logits = self.age_logits().detach()
            stats["age_logit_peak"] = (logits.amax(-1) - logits.mean(-1)).mean()
        if self.age_slope is not None:  # the heads' mean logit change per unit of log(age)
            stats["age_slope"] = self.age_bias_scale * self.age_slope.detach().mean()
        return stats


def dot_logits(query_heads: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """`query_heads [B, T, nh, d]` (scaled already: see `_query_heads`), `keys [B, M, nh, d]` -> logits
    `[B, nh, T, M]`."""
    return torch.matmul(query_heads.transpose(1, 2), keys.permute(0, 2, 3, 1))
