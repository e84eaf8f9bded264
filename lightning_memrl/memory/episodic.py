"""EpisodicMemory: a long-term k-NN store written while acting and read by the policy.

Consistency of acting and training: the store is one table shared by all envs and episodes, so it
cannot live in the per-env recurrent state. Instead every entry is stamped with the *tick* (the
acting step) that wrote it, and the recurrent state carries each env's current tick `[B]` (it is
not cleared by `reset`: the store outlives episodes on purpose). A read at tick `t` only sees
entries written before `t`. Training replays a sequence from its stored state, so step `i` of the
replay reads at tick `stored + i`, exactly the entries the acting step saw: no leakage from later
steps of the rollout, and replayed reads equal acting reads while the parameters are unchanged.
The store is read-only during `forward_sequence` (training), in eval mode and inside `read_only()`
(the agent's bootstrap `predict_value`); `forward_step` in train mode under `no_grad` (acting)
writes. Entries evicted (or an index rebuilt) between acting and the update are the only source of
difference; keep `capacity` above one rollout's writes and rebuild between iterations
(`FaissIndexRebuild` does).

Scope: with `scope="global"` (the default, above) a read sees every earlier entry of any env and
episode. With `scope="episode"` a read sees only the entries written by the same env row during its
current episode (and before the reading tick). The state then also carries `env [B]` (an id per env
row, unique across every `initial_state` call of this memory, so rows of a rollout, of an evaluation
and of a later rollout never share one) and `episode_start [B]` (the tick at which the row's episode
began; a `reset` row restarts it at the current tick, and `forward_sequence` follows resets inside
the sequence with a running maximum, so replay equals acting). Entries remember the writing env.
An episode-scoped read never depends on other episodes, so evaluation (eval mode) writes too, or its
memory would stay empty: every step under `no_grad` outside `read_only()` writes, in either mode.
Evaluation entries can evict training entries: keep `capacity` above one rollout's plus one
evaluation's writes. The filter is a mask on the exact similarity matrix: scope "episode" needs
backend "exact" (an IVF-PQ index returns a store-wide candidate list, of which the few entries of
one episode are almost never part).

With `scope="env"` a read sees the entries its own env row wrote in any earlier episode and in its
current one (a long-term memory of that env, not shared with other rows): the state carries `env`.

Read-out: the query (controller output `h`) is compared with the `k` retrieved keys by cosine
similarity; the read is `out(sum_i softmax(sim_i / temperature) * value_i)`. Values are the
acting-time `h` (constants to the optimizer); the gradient reaches the controller through the
attention weights. Keys are `h` too, unless a key encoder is configured (`key_size`): then an entry's
key is the momentum target encoder's embedding of `h`, the query is the online encoder's (hippotorch's
`DualEncoder`), and `MemoryConsolidation` trains the encoder between PPO iterations ("sleep") with
hippotorch's reward-aware contrastive objective and re-encodes the stored keys (`reencode_keys`).
The PPO optimizer never moves the key encoder (its parameters do not require grad), so keys written
while acting and the queries of the replay agree until the next sleep.

What consolidation needs rides with each entry (see `VectorStore`): the env row, the tick (its age),
the episode, the episode's return once it ended and the next entry of the same episode. The store
learns them after each rollout's GAE, in `end_rollout`, from the rollout's rewards and ends.

Advantage-gated writes (`write_gate="abs_adv"` or `"pos_adv"`, Infinity's long-term memory): acting
steps write nothing; `end_rollout` writes, once per rollout, the acting-time queries of the steps whose
`|A|` (or positive `A`) passes `write_threshold` or the `write_quantile` of the rollout. Their tick is the
row's last acting tick of the rollout, so no read of that rollout (acting or replayed) sees them and
replay stays exact; the next rollout's reads do. Evaluation (eval mode) of an episode- or env-scoped
store writes every step, ungated: there is no advantage to gate by.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.hippocampal.encoder import DualEncoder, VectorEncoder
from lightning_memrl.memory.base import Memory
from lightning_memrl.memory.rollout_ledger import WRITE_GATES, RolloutLedger, finished_returns, gate_mask, next_written
from lightning_memrl.memory.vector_store import VectorStore

SCOPES = ("global", "episode", "env")


class EpisodicMemory(Memory):
    """A FAISS / exact k-NN episodic memory behind the `Memory` contract.

    Args:
        query_size: controller output size `H` (keys and values are `H`-sized).
        read_size: size of the read fed to the policy and value heads.
        k: neighbours per read.
        temperature: softmax temperature of the read attention over cosine similarities.
        capacity: entries kept; the oldest are evicted first.
        backend: `"auto"`, `"exact"` or `"ivfpq"` (see `VectorStore`).
        train_threshold: entries before the IVF-PQ index is trained.
        nlist: IVF lists.
        m: PQ sub-quantizers (divides `query_size`).
        nbits: bits per PQ code.
        nprobe: lists searched per query.
        refine_factor: IVF-PQ candidates per neighbour, re-ranked exactly.
        scope: `"global"` (a read sees earlier entries of every env and episode), `"episode"` (only
            the entries of the same env row in its current episode) or `"env"` (the same env row's
            entries of every episode); `"episode"` and `"env"` need `backend="exact"`.
        key_size: size of the keys made by a key encoder (`None`: the keys are the queries themselves).
            Needed by `MemoryConsolidation`.
        key_hidden: hidden size of the key encoder's MLP (`None`: one linear map).
        key_momentum: EMA momentum of the key encoder's target (hippotorch's 0.995).
        write_gate: `"none"` (every acting step writes at once), `"abs_adv"` or `"pos_adv"` (advantage-
            gated writes once per rollout, see the module doc).
        write_threshold: a gated step is written when its score (`|A|` or `A`) is above this ...
        write_quantile: ... or, when set, at or above this quantile of the rollout's scores (in [0, 1)).
    """

    cuda_graph_blocker = "its store is shared outside the recurrent state: a step searches it and writes to it"

    def __init__(
        self,
        query_size: int = 128,
        read_size: int = 64,
        *,
        k: int = 8,
        temperature: float = 0.1,
        capacity: int = 100_000,
        backend: str = "auto",
        train_threshold: int | None = None,
        nlist: int = 256,
        m: int = 16,
        nbits: int = 8,
        nprobe: int = 16,
        refine_factor: int = 4,
        scope: str = "global",
        key_size: int | None = None,
        key_hidden: int | None = None,
        key_momentum: float = 0.995,
        write_gate: str = "none",
        write_threshold: float = 0.0,
        write_quantile: float | None = None,
    ):
        super().__init__()
        if k < 1 or not temperature > 0:
            raise ValueError(f"EpisodicMemory needs k >= 1 and temperature > 0, got {k}, {temperature}")
        if scope not in SCOPES:
            raise ConfigError(f"EpisodicMemory scope must be one of {SCOPES}, got {scope!r}")
        if scope != "global" and backend != "exact":
            raise ConfigError(
                f"EpisodicMemory scope {scope!r} needs backend 'exact' (got {backend!r}): an IVF-PQ candidate list "
                "rarely holds the few entries of one env row"
            )
        if write_gate not in WRITE_GATES:
            raise ConfigError(f"EpisodicMemory write_gate must be one of {WRITE_GATES}, got {write_gate!r}")
        if write_quantile is not None and not 0.0 <= write_quantile < 1.0:
            raise ConfigError(f"EpisodicMemory write_quantile must be in [0, 1), got {write_quantile}")
        self.query_size, self.read_size, self.k, self.temperature = query_size, read_size, k, temperature
        self.scope = scope
        self.write_gate, self.write_threshold, self.write_quantile = write_gate, write_threshold, write_quantile
        self._next_env = 0  # the first unused env id (scopes "episode", "env")
        self.key_encoder: DualEncoder | None = None
        if key_size is not None:
            online = VectorEncoder(query_size, key_size, key_hidden)
            self.key_encoder = DualEncoder(query_size, key_size, momentum=key_momentum, online=online)
            self.key_encoder.requires_grad_(False)  # trained by consolidation only, never by the PPO optimizer
        self.store = VectorStore(
            key_size or query_size,
            query_size,
            capacity=capacity,
            backend=backend,
            train_threshold=train_threshold,
            nlist=nlist,
            m=m,
            nbits=nbits,
            nprobe=nprobe,
            refine_factor=refine_factor,
        )
        self.out = nn.Linear(query_size, read_size)
        self._diagnostics: dict[str, torch.Tensor] = {}
        self._writes_suspended = False
        self.ledger = RolloutLedger(max_entries=capacity)

    # --- the contract -----------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """`{"tick": [B] long}`: new rows start after everything already written.

        Scopes "episode" and "env" add `env [B]` (fresh ids, never handed out before); "episode" adds
        `episode_start [B]` (= tick).
        """
        tick = torch.full((batch_size,), self.store.clock, dtype=torch.long, device=device)
        if self.scope == "global":
            return {"tick": tick}
        env = torch.arange(self._next_env, self._next_env + batch_size, device=device)
        self._next_env += batch_size
        if self.scope == "env":
            return {"tick": tick, "env": env}
        return {"tick": tick, "env": env, "episode_start": tick.clone()}

    def forward_step(
        self, query: torch.Tensor, state: dict[str, torch.Tensor], reset: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`query [B, H]` -> `(read [B, R], state at tick + 1)`; writes the query when acting (see the module doc)."""
        tick = state["tick"]
        next_state = {**state, "tick": tick + 1}
        if self.scope == "global":
            read = self._read(query, tick)
        elif self.scope == "env":
            read = self._read(query, tick, state["env"], torch.zeros_like(tick))
        else:
            start = torch.where(reset, tick, state["episode_start"])
            read = self._read(query, tick, state["env"], start)
            next_state["episode_start"] = start
        if self._writes(query):
            self._write_step(query.detach(), tick, state.get("env"), reset)
        return read, next_state

    def forward_sequence(
        self, query: torch.Tensor, state: dict[str, torch.Tensor], reset: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`query [B, T, H]` -> `(read [B, T, R], state after step T-1)`; never writes (replay)."""
        b, t, _ = query.shape
        ticks = state["tick"].unsqueeze(1) + torch.arange(t, device=query.device)  # [B, T]
        flat = query.reshape(b * t, -1)
        next_state = {**state, "tick": state["tick"] + t}
        if self.scope == "global":
            read = self._read(flat, ticks.reshape(-1)).reshape(b, t, -1)
            return read, next_state
        envs = state["env"].unsqueeze(1).expand(b, t)
        if self.scope == "env":
            starts = torch.zeros_like(ticks)
        else:  # the episode of step i began at the tick of the last reset at or before i, else where the state says
            starts = torch.where(reset, ticks, state["episode_start"].unsqueeze(1)).cummax(dim=1).values  # [B, T]
            next_state["episode_start"] = starts[:, -1]
        read = self._read(flat, ticks.reshape(-1), envs.reshape(-1), starts.reshape(-1)).reshape(b, t, -1)
        return read, next_state

    @contextmanager
    def read_only(self) -> Iterator[None]:
        """Suspend writes: steps taken inside read (at their tick) but add nothing to the store."""
        suspended, self._writes_suspended = self._writes_suspended, True
        try:
            yield
        finally:
            self._writes_suspended = suspended

    # --- after a rollout -------------------------------------------------------------------------
    @torch.no_grad()
    def end_rollout(
        self, advantages: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor
    ) -> None:
        """Learn the outcome of the rollout just acted (each `[T, N]`, after GAE): gated writes, episode
        returns and successor links of the entries (see the module doc)."""
        ledger = self.ledger
        t, n = advantages.shape
        steps = ledger.take(t, n, pad={"uids": -1, "episodes": -1} if self.write_gate == "none" else None)
        device = self.store.device
        episodes = torch.stack([s["episodes"] for s in steps]).to(device)  # [T, N]
        if self.write_gate == "none":
            uids = torch.stack([s["uids"] for s in steps]).to(device)
        else:
            uids = self._write_gated(steps, gate_mask(advantages, self.write_gate, self.write_threshold,
                                                      self.write_quantile).to(device))  # fmt: skip
        # successors: the row's last entry of the previous rollout may be followed by this rollout's first
        grid = torch.cat([ledger.last_uid.to(device)[None], uids])
        grid_episodes = torch.cat([ledger.last_episode.to(device)[None], episodes])
        following = next_written(grid, grid_episodes)
        written = grid >= 0
        self.store.link(grid[written], following[written])
        last = torch.where(written, torch.arange(t + 1, device=device)[:, None], -1).max(0).values  # [N]
        at_last = last.clamp_min(0)[None]
        ledger.last_uid = torch.where(last >= 0, grid.gather(0, at_last)[0], -1)
        ledger.last_episode = torch.where(last >= 0, grid_episodes.gather(0, at_last)[0], -1)
        ended, returns, ledger.open_return = finished_returns(
            episodes, rewards.to(device), (terminated | truncated).to(device), ledger.open_return.to(device)
        )
        self.store.set_returns(ended, returns)

    def _write_gated(self, steps: list[dict[str, torch.Tensor]], mask: torch.Tensor) -> torch.Tensor:
        """Write the queries of the steps in `mask [T, N]`, at each row's last acting tick; returns uids `[T, N]`."""
        uids = torch.full(mask.shape, -1, dtype=torch.long, device=mask.device)
        if not bool(mask.any()):
            return uids
        values = torch.stack([s["values"] for s in steps])[mask]  # [M, H], in (t, n) order
        rows = mask.nonzero()[:, 1]
        ticks = steps[-1]["ticks"].to(mask.device)[rows]
        envs = torch.stack([s["envs"] for s in steps]).to(mask.device)[mask]
        episodes = torch.stack([s["episodes"] for s in steps]).to(mask.device)[mask]
        order = ticks.argsort(stable=True)  # the store keeps ticks non-decreasing in uid order
        self._sync_device(values.device)
        new = self.store.add(
            self.encode_key(values[order]), values[order], ticks=ticks[order], envs=envs[order],
            episodes=episodes[order],
        )  # fmt: skip
        flat = torch.empty_like(new)
        flat[order] = new
        uids[mask] = flat.to(mask.device)
        return uids

    # --- consolidation ----------------------------------------------------------------------------
    @torch.no_grad()
    def reencode_keys(self, chunk: int = 16_384) -> None:
        """Re-encode every stored key with the key encoder's target (after it moved); a trained index must
        then be rebuilt (`FaissIndexRebuild` and `MemoryConsolidation` share `rebuild_index`)."""
        if self.key_encoder is None:
            raise ConfigError("EpisodicMemory.reencode_keys needs a key encoder: build the memory with key_size")
        values = self.store.values[self.store.ordered_slots()]
        keys = [self.encode_key(values[i : i + chunk]) for i in range(0, values.shape[0], chunk)]
        self.store.set_keys(torch.cat(keys) if keys else values.new_zeros(0, self.store.key_size))

    # --- internals --------------------------------------------------------------------------------
    def encode_query(self, query: torch.Tensor) -> torch.Tensor:
        """What a read compares with the keys, `[..., H]` -> `[..., D]`: the online key encoder's embedding, or the
        query itself."""
        return query if self.key_encoder is None else self.key_encoder.encode_query(query)

    def encode_key(self, query: torch.Tensor) -> torch.Tensor:
        """The key stored for a query, `[..., H]` -> `[..., D]`: the target key encoder's embedding, or the query."""
        return query if self.key_encoder is None else self.key_encoder.encode_key(query)

    def _write_step(
        self, query: torch.Tensor, tick: torch.Tensor, env: torch.Tensor | None, reset: torch.Tensor
    ) -> None:
        """An acting step's write: now (kept in the ledger when collecting), or recorded for `end_rollout` (gated)."""
        envs = env if env is not None else torch.full_like(tick, -1)
        if not self.training:  # evaluation of a scoped store: not part of any rollout
            self.store.add(self.encode_key(query), query, ticks=tick, envs=envs)
            return
        episodes = self.ledger.episode_ids(reset)
        if self.write_gate == "none":
            uids = self.store.add(self.encode_key(query), query, ticks=tick, envs=envs, episodes=episodes)
            self.ledger.record(uids=uids, episodes=episodes.clone())
        else:
            self.ledger.record(values=query, ticks=tick.clone(), envs=envs.clone(), episodes=episodes.clone())

    def _writes(self, query: torch.Tensor) -> bool:
        """Whether this `forward_step` is an acting step that writes (and move the store to the query's device)."""
        acting = not torch.is_grad_enabled() and not self._writes_suspended
        # an episode-scoped read only sees its own episode: evaluation writes, or it would read nothing
        if acting and (self.training or self.scope != "global"):
            self._sync_device(query.device)
            return True
        return False

    def _sync_device(self, device: torch.device) -> None:
        if self.store.device != device:
            self.store.to(device)

    def _read(
        self,
        query: torch.Tensor,
        tick: torch.Tensor,
        env: torch.Tensor | None = None,
        episode_start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`query [Q, H]`, `tick [Q]` -> `read [Q, R]` over entries written before each tick.

        With `env [Q]` and `episode_start [Q]`: only the entries of that env written since that tick.
        """
        self._sync_device(query.device)
        q = self.encode_query(query)
        sims, slots = self.store.search(q, self.k, before_tick=tick, env=env, since_tick=episode_start)
        found = slots >= 0
        keys = self.store.keys[slots.clamp_min(0)]  # [Q, k, D] constants
        values = self.store.values[slots.clamp_min(0)]
        # recompute the similarity with the live query so the gradient reaches the controller
        sim = torch.einsum("qh,qkh->qk", F.normalize(q, dim=-1), keys.to(q.dtype))
        logits = (sim / self.temperature).masked_fill(~found, float("-inf"))
        weights = torch.nan_to_num(logits.softmax(-1), nan=0.0)  # rows with no entry read zeros
        read = self.out(torch.einsum("qk,qkh->qh", weights, values.to(query.dtype)))
        self._diagnostics = {
            "hit_rate": found[:, 0].float().mean().detach(),
            "top_similarity": torch.where(found[:, 0], sims[:, 0], 0.0).mean().detach(),
            "store_size": torch.tensor(float(self.store.size)),
        }
        return read

    def diagnostics(self) -> dict[str, torch.Tensor]:
        return dict(self._diagnostics)

    # --- checkpointing: the store rides in the module's state_dict --------------------------------
    def get_extra_state(self) -> dict:
        return {"store": self.store.state_dict(), "next_env": self._next_env, "ledger": self.ledger.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        self.store.load_state_dict(state["store"])
        self._next_env = state.get("next_env", 0)  # checkpoints from before scope "episode" have none
        if "ledger" in state:  # checkpoints from before consolidation have none
            self.ledger.load_state_dict(state["ledger"])
