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

Read-out: the query (controller output `h`) is compared with the `k` retrieved keys by cosine
similarity; the read is `out(sum_i softmax(sim_i / temperature) * value_i)`. Keys and values are
the acting-time `h` (constants to the optimizer); the gradient reaches the controller through the
attention weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.base import Memory
from lightning_memrl.memory.vector_store import VectorStore

SCOPES = ("global", "episode")


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
        scope: `"global"` (a read sees earlier entries of every env and episode) or `"episode"` (only
            the entries of the same env row in its current episode; needs `backend="exact"`).
    """

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
    ):
        super().__init__()
        if k < 1 or not temperature > 0:
            raise ValueError(f"EpisodicMemory needs k >= 1 and temperature > 0, got {k}, {temperature}")
        if scope not in SCOPES:
            raise ConfigError(f"EpisodicMemory scope must be one of {SCOPES}, got {scope!r}")
        if scope == "episode" and backend != "exact":
            raise ConfigError(
                f"EpisodicMemory scope 'episode' needs backend 'exact' (got {backend!r}): an IVF-PQ candidate list "
                "rarely holds the few entries of one episode"
            )
        self.query_size, self.read_size, self.k, self.temperature = query_size, read_size, k, temperature
        self.scope = scope
        self._next_env = 0  # the first unused env id (scope "episode")
        self.store = VectorStore(
            query_size,
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

    # --- the contract -----------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """`{"tick": [B] long}`: new rows start after everything already written.

        Scope "episode" adds `env [B]` (fresh ids, never handed out before) and `episode_start [B]` (= tick).
        """
        tick = torch.full((batch_size,), self.store.clock, dtype=torch.long, device=device)
        if self.scope == "global":
            return {"tick": tick}
        env = torch.arange(self._next_env, self._next_env + batch_size, device=device)
        self._next_env += batch_size
        return {"tick": tick, "env": env, "episode_start": tick.clone()}

    def forward_step(
        self, query: torch.Tensor, state: dict[str, torch.Tensor], reset: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`query [B, H]` -> `(read [B, R], state at tick + 1)`; writes the query when acting (see the module doc)."""
        tick = state["tick"]
        if self.scope == "global":
            read = self._read(query, tick)
            next_state = {"tick": tick + 1}
        else:
            start = torch.where(reset, tick, state["episode_start"])
            read = self._read(query, tick, state["env"], start)
            next_state = {"tick": tick + 1, "env": state["env"], "episode_start": start}
        if self._writes(query):
            self.store.add(query.detach(), query.detach(), ticks=tick, envs=state.get("env", -1))
        return read, next_state

    def forward_sequence(
        self, query: torch.Tensor, state: dict[str, torch.Tensor], reset: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`query [B, T, H]` -> `(read [B, T, R], state after step T-1)`; never writes (replay)."""
        b, t, _ = query.shape
        ticks = state["tick"].unsqueeze(1) + torch.arange(t, device=query.device)  # [B, T]
        flat = query.reshape(b * t, -1)
        if self.scope == "global":
            read = self._read(flat, ticks.reshape(-1)).reshape(b, t, -1)
            return read, {"tick": state["tick"] + t}
        # the episode of step i began at the tick of the last reset at or before i, else where the state says
        starts = torch.where(reset, ticks, state["episode_start"].unsqueeze(1)).cummax(dim=1).values  # [B, T]
        envs = state["env"].unsqueeze(1).expand(b, t)
        read = self._read(flat, ticks.reshape(-1), envs.reshape(-1), starts.reshape(-1)).reshape(b, t, -1)
        return read, {"tick": state["tick"] + t, "env": state["env"], "episode_start": starts[:, -1]}

    @contextmanager
    def read_only(self) -> Iterator[None]:
        """Suspend writes: steps taken inside read (at their tick) but add nothing to the store."""
        suspended, self._writes_suspended = self._writes_suspended, True
        try:
            yield
        finally:
            self._writes_suspended = suspended

    # --- internals --------------------------------------------------------------------------------
    def _writes(self, query: torch.Tensor) -> bool:
        """Whether this `forward_step` is an acting step that writes (and move the store to the query's device)."""
        acting = not torch.is_grad_enabled() and not self._writes_suspended
        # an episode-scoped read only sees its own episode: evaluation writes, or it would read nothing
        if acting and (self.training or self.scope == "episode"):
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
        sims, slots = self.store.search(query, self.k, before_tick=tick, env=env, since_tick=episode_start)
        found = slots >= 0
        keys = self.store.keys[slots.clamp_min(0)]  # [Q, k, H] constants
        values = self.store.values[slots.clamp_min(0)]
        # recompute the similarity with the live query so the gradient reaches the controller
        sim = torch.einsum("qh,qkh->qk", F.normalize(query, dim=-1), keys.to(query.dtype))
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
        return {"store": self.store.state_dict(), "next_env": self._next_env}

    def set_extra_state(self, state: dict) -> None:
        self.store.load_state_dict(state["store"])
        self._next_env = state.get("next_env", 0)  # checkpoints from before scope "episode" have none
