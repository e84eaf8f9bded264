"""VectorStore: a bounded key/value store with k-NN search (exact torch, or FAISS IVF-PQ).

Index lifecycle: every key lives in a ring of `capacity` slots (FIFO eviction: the oldest entry is
overwritten first). Search is exact (a masked matrix product in torch, on the keys' device) until
`train_threshold` entries exist; then, when faiss is importable and the backend allows it, an
`IndexIVFPQ` is trained on the stored keys and later searches fetch `k * refine_factor` candidates
from it and re-rank them exactly with the stored keys (so recall stays high with coarse codes).
On CUDA, faiss-GPU is used when faiss reports GPUs; otherwise the exact torch search runs on the GPU.

Every entry has a unique, increasing id (`uid`, also its faiss id), a `tick` (the acting step
that wrote it) and an `env` (the id of the env row that wrote it; -1 when not given). What
consolidation needs rides along: the `episode` id (-1 when not given), the episode's `return` (NaN
until it is known: `set_returns` after the episode ends) and the uid of the entry that followed in
the same episode (`successor`, -1 when none: `link`). An entry's age is the clock minus its tick.
`search(..., before_tick=...)` only returns entries written before a given tick, which is what makes
replayed reads equal acting-time reads (see `EpisodicMemory`). `search(..., env=, since_tick=)`
further keeps only the entries of one env written in `[since_tick, before_tick)` (one episode of one
env row): a mask on the exact similarity matrix, so it needs exact search (no trained IVF-PQ index).

Keys are L2-normalised; similarity is the inner product (cosine).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lightning_utilities.core.imports import RequirementCache

from lightning_memrl.errors import ConfigError, MissingDependencyError
from lightning_memrl.hippocampal.search import top_k_similar

_FAISS_AVAILABLE = RequirementCache("faiss-cpu", "faiss") or RequirementCache("faiss-gpu", "faiss")
BACKENDS = ("auto", "exact", "ivfpq")


def _import_faiss() -> Any:
    if not _FAISS_AVAILABLE:
        raise MissingDependencyError(
            "the IVF-PQ index needs faiss: pip install 'lightning-memrl[episodic]' (faiss-cpu), or use backend='exact'"
        )
    import faiss

    return faiss


class VectorStore:
    """Bounded key/value store with exact or IVF-PQ k-NN search.

    Args:
        key_size: feature size `D` of keys.
        value_size: feature size `V` of values.
        capacity: maximum number of entries; past it the oldest are evicted (FIFO).
        backend: `"exact"` (torch only), `"ivfpq"` (needs faiss) or `"auto"` (IVF-PQ when faiss is
            importable, else exact).
        train_threshold: entries needed before the IVF-PQ index is trained (>= `nlist`; faiss
            recommends ~39 points per list).
        nlist: IVF coarse lists.
        m: PQ sub-quantizers (divides `key_size`).
        nbits: bits per PQ code.
        nprobe: lists visited per search.
        refine_factor: candidates fetched from IVF-PQ per result, re-ranked exactly.
        device: device of the stored tensors.
    """

    def __init__(
        self,
        key_size: int,
        value_size: int,
        *,
        capacity: int = 100_000,
        backend: str = "auto",
        train_threshold: int | None = None,
        nlist: int = 256,
        m: int = 16,
        nbits: int = 8,
        nprobe: int = 16,
        refine_factor: int = 4,
        device: torch.device | str = "cpu",
    ):
        if backend not in BACKENDS:
            raise ConfigError(f"VectorStore backend must be one of {BACKENDS}, got {backend!r}")
        if capacity < 1 or key_size < 1 or value_size < 0:
            raise ConfigError(f"VectorStore needs capacity, key_size >= 1, got {capacity}, {key_size}")
        if backend != "exact" and key_size % m:
            raise ConfigError(f"VectorStore m ({m}) must divide key_size ({key_size}); pick m in the divisors")
        if backend != "exact" and not (1 <= nprobe <= nlist and refine_factor >= 1):
            raise ConfigError(f"VectorStore needs 1 <= nprobe <= nlist and refine_factor >= 1, got {nprobe}, {nlist}")
        if backend == "ivfpq":
            _import_faiss()
        self.key_size, self.value_size, self.capacity = key_size, value_size, capacity
        self.backend = backend
        self.nlist, self.m, self.nbits, self.nprobe, self.refine_factor = nlist, m, nbits, nprobe, refine_factor
        # k-means needs at least as many points as centroids: nlist coarse, 2**nbits per PQ sub-quantizer
        self.train_threshold = max(nlist, 2**nbits, train_threshold if train_threshold is not None else 39 * nlist)
        self.device = torch.device(device)
        self.keys = torch.zeros(capacity, key_size, device=self.device)
        self.values = torch.zeros(capacity, value_size, device=self.device)
        self.ticks = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.envs = torch.full((capacity,), -1, dtype=torch.long, device=self.device)
        self.episodes = torch.full((capacity,), -1, dtype=torch.long, device=self.device)
        self.returns = torch.full((capacity,), float("nan"), device=self.device)
        self.successors = torch.full((capacity,), -1, dtype=torch.long, device=self.device)
        self.next_uid = 0  # uid of the next write; entries hold uids [next_uid - size, next_uid)
        self.size = 0
        self.rebuilds = 0
        self.index: Any = None  # the trained faiss index (CPU), or None while searching exactly
        self._gpu_index: Any = None

    # --- bookkeeping ------------------------------------------------------------------------------
    @property
    def first_uid(self) -> int:
        return self.next_uid - self.size

    @property
    def is_trained(self) -> bool:
        return self.index is not None

    @property
    def clock(self) -> int:
        """One past the largest tick written (0 when empty)."""
        return int(self.ticks[self._slots(self.next_uid - 1, 1)].item()) + 1 if self.size else 0

    def _slots(self, start_uid: int, count: int) -> torch.Tensor:
        return torch.arange(start_uid, start_uid + count, device=self.device) % self.capacity

    def _ordered(self) -> torch.Tensor:
        """Slots of the stored entries in uid order `[size]`."""
        return self._slots(self.first_uid, self.size)

    def ordered_slots(self) -> torch.Tensor:
        """Slots of the stored entries, oldest first `[size]`."""
        return self._ordered()

    def slots_of(self, uids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(slot, stored)` of `uids [M]`: where each lives, and whether it is still stored (not evicted, not -1)."""
        uids = uids.to(self.device)
        return uids.clamp_min(0) % self.capacity, (uids >= self.first_uid) & (uids < self.next_uid)

    def _columns(self) -> tuple[str, ...]:
        return ("keys", "values", "ticks", "envs", "episodes", "returns", "successors")

    def to(self, device: torch.device | str) -> VectorStore:
        """Move the stored tensors (the faiss index stays on its own device)."""
        self.device = torch.device(device)
        for name in self._columns():
            setattr(self, name, getattr(self, name).to(self.device))
        return self

    def _wants_ivfpq(self) -> bool:
        return self.backend == "ivfpq" or (self.backend == "auto" and bool(_FAISS_AVAILABLE))

    # --- writing ----------------------------------------------------------------------------------
    @torch.no_grad()
    def add(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        ticks: torch.Tensor | int = 0,
        envs: torch.Tensor | int = -1,
        episodes: torch.Tensor | int = -1,
    ) -> torch.Tensor:
        """Insert `keys [N, D]`, `values [N, V]` written at `ticks [N]` by env rows `envs [N]` in episodes
        `episodes [N]`; returns uids `[N]`. Returns and successors start unknown.

        Ticks must be non-decreasing across writes for `before_tick` searches without `env`; searches
        filtered by `env` compare ticks directly and need no order.
        """
        if keys.dim() != 2 or keys.shape[1] != self.key_size or values.shape != (keys.shape[0], self.value_size):
            raise ValueError(
                f"VectorStore.add expects keys [N, {self.key_size}] and values [N, {self.value_size}], "
                f"got {tuple(keys.shape)} and {tuple(values.shape)}"
            )
        n = keys.shape[0]
        ticks = torch.as_tensor(ticks, dtype=torch.long, device=self.device).expand(n)
        envs = torch.as_tensor(envs, dtype=torch.long, device=self.device).expand(n)
        episodes = torch.as_tensor(episodes, dtype=torch.long, device=self.device).expand(n)
        if n > self.capacity:  # only the newest `capacity` rows survive; the rest get uids but no slot
            self._evict(self.size)
            self.next_uid += n - self.capacity
            keys, values = keys[-self.capacity :], values[-self.capacity :]
            ticks, envs, episodes = ticks[-self.capacity :], envs[-self.capacity :], episodes[-self.capacity :]
            n = self.capacity
        self._evict(max(0, self.size + n - self.capacity))
        slots = self._slots(self.next_uid, n)
        keys = F.normalize(keys.to(self.device, torch.float32), dim=-1)
        self.keys[slots] = keys
        self.values[slots] = values.to(self.device, torch.float32)
        self.ticks[slots] = ticks
        self.envs[slots] = envs
        self.episodes[slots] = episodes
        self.returns[slots] = float("nan")
        self.successors[slots] = -1
        new_uids = np.arange(self.next_uid, self.next_uid + n, dtype=np.int64)
        self.next_uid += n
        self.size += n
        if self.index is not None:
            self.index.add_with_ids(keys.cpu().numpy(), new_uids)
            self._gpu_index = None
        elif self.size >= self.train_threshold and self._wants_ivfpq():
            self.rebuild()
        return torch.arange(self.next_uid - n, self.next_uid, device=self.device)

    @torch.no_grad()
    def set_returns(self, episodes: torch.Tensor, returns: torch.Tensor) -> None:
        """Give every stored entry of episode `episodes[i]` the return `returns[i]` (`[E]` each)."""
        if episodes.numel() == 0 or self.size == 0:
            return
        order = episodes.to(self.device).argsort()
        ids, values = episodes.to(self.device)[order], returns.to(self.device, torch.float32)[order]
        pos = torch.searchsorted(ids, self.episodes).clamp_max(ids.numel() - 1)
        hit = (ids[pos] == self.episodes) & (self.episodes >= 0)
        self.returns = torch.where(hit, values[pos], self.returns)

    @torch.no_grad()
    def link(self, uids: torch.Tensor, successors: torch.Tensor) -> None:
        """Record that entry `successors[i]` followed entry `uids[i]` in one episode (`[M]` each; evicted: skipped)."""
        slots, stored = self.slots_of(uids)
        self.successors[slots[stored]] = successors.to(self.device)[stored]

    @torch.no_grad()
    def set_keys(self, keys: torch.Tensor) -> None:
        """Replace every stored key, `keys [size, D]` oldest first (re-encoded keys). A trained index is then
        stale: rebuild it (`rebuild`) before the next search."""
        if keys.shape != (self.size, self.key_size):
            raise ValueError(f"VectorStore.set_keys expects [{self.size}, {self.key_size}], got {tuple(keys.shape)}")
        self.keys[self._ordered()] = F.normalize(keys.to(self.device, torch.float32), dim=-1)

    def _evict(self, count: int) -> None:
        """Drop the `count` oldest entries."""
        if count <= 0:
            return
        if self.index is not None:
            faiss = _import_faiss()
            self.index.remove_ids(faiss.IDSelectorRange(self.first_uid, self.first_uid + count))
            self._gpu_index = None
        self.size -= count

    @torch.no_grad()
    def rebuild(self, train_sample: int = 262_144, seed: int = 0) -> None:
        """Train a fresh IVF-PQ index on (a sample of) the stored keys and add every entry to it."""
        faiss = _import_faiss()
        if self.size < max(self.nlist, 2**self.nbits):
            raise ValueError(
                f"VectorStore.rebuild needs at least max(nlist, 2**nbits) = {max(self.nlist, 2**self.nbits)} "
                f"entries, has {self.size}"
            )
        keys = self.keys[self._ordered()].cpu().numpy()
        quantizer = faiss.IndexFlatIP(self.key_size)
        index = faiss.IndexIVFPQ(quantizer, self.key_size, self.nlist, self.m, self.nbits, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.pq.cp.seed = seed  # deterministic training: a rebuilt index answers the same queries alike
        rows = np.random.default_rng(seed).permutation(len(keys))[:train_sample]
        index.train(np.ascontiguousarray(keys[np.sort(rows)]))
        index.add_with_ids(keys, np.arange(self.first_uid, self.next_uid, dtype=np.int64))
        index.nprobe = self.nprobe
        self.index, self._gpu_index = index, None
        self.rebuilds += 1

    def reset(self) -> None:
        """Forget every entry and the index."""
        self.next_uid = self.size = 0
        self.index = self._gpu_index = None

    # --- search -----------------------------------------------------------------------------------
    def _bound_uids(self, before_tick: torch.Tensor) -> torch.Tensor:
        """`[Q]` one past the last uid written before each tick (ticks are non-decreasing in uid)."""
        ordered_ticks = self.ticks[self._ordered()]
        return self.first_uid + torch.searchsorted(ordered_ticks, before_tick.to(self.device), right=False)

    @torch.no_grad()
    def search(
        self,
        query: torch.Tensor,
        k: int,
        before_tick: torch.Tensor | None = None,
        *,
        env: torch.Tensor | None = None,
        since_tick: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The `k` most similar entries of `query [Q, D]`: `(similarity [Q, k], slot [Q, k])`.

        Only entries written before `before_tick [Q]` are eligible when given. With `env [Q]` and
        `since_tick [Q]` (both, and `before_tick`), only entries written by env `env` at ticks in
        `[since_tick, before_tick)` are; that filter needs exact search. Missing neighbours (fewer
        eligible entries than `k`) have similarity `-inf` and slot `-1`.
        """
        if query.dim() != 2 or query.shape[1] != self.key_size:
            raise ValueError(f"VectorStore.search expects query [Q, {self.key_size}], got {tuple(query.shape)}")
        if (env is None) != (since_tick is None) or (env is not None and before_tick is None):
            raise ValueError("VectorStore.search filters by env with env, since_tick and before_tick together")
        if env is not None and self.index is not None:
            raise ConfigError(
                "VectorStore.search by env needs exact search, but this store trained an IVF-PQ index: "
                "build it with backend='exact'"
            )
        q = F.normalize(query.detach().to(self.device, torch.float32), dim=-1)
        if env is not None:
            window = tuple(t.to(self.device) for t in (env, since_tick, before_tick))
            return self._search_exact(q, k, None, window)
        bound = None if before_tick is None else self._bound_uids(before_tick)
        if self.index is None or self.size == 0:
            return self._search_exact(q, k, bound)
        return self._search_ivfpq(q, k, bound)

    def _search_exact(
        self,
        q: torch.Tensor,
        k: int,
        bound: torch.Tensor | None,
        window: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        chunk: int = 4096,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked exact top-`k`: uids below `bound [Q]`, or entries of `window = (env, since, before)` `[Q]` each."""
        n = q.shape[0]
        sims = torch.full((n, k), float("-inf"), device=self.device)
        slots = torch.full((n, k), -1, dtype=torch.long, device=self.device)
        if self.size == 0:
            return sims, slots
        first_slot = self.first_uid % self.capacity
        offset = (torch.arange(self.capacity, device=self.device) - first_slot) % self.capacity
        uids = self.first_uid + offset  # uid held by each slot (valid where offset < size)
        empty = (offset >= self.size)[None, :]
        kk = min(k, self.size)
        for start in range(0, n, chunk):
            hidden = empty
            if bound is not None:
                hidden = hidden | (uids[None, :] >= bound[start : start + chunk, None])
            if window is not None:
                env, since, before = (w[start : start + chunk, None] for w in window)
                hidden = hidden | (self.envs != env) | (self.ticks < since) | (self.ticks >= before)
            top, pos = top_k_similar(q[start : start + chunk], self.keys, kk, hidden)
            sims[start : start + chunk, :kk] = top
            slots[start : start + chunk, :kk] = torch.where(torch.isfinite(top), pos, -1)
        return sims, slots

    def _faiss_index(self) -> Any:
        faiss = _import_faiss()
        if self.device.type == "cuda" and faiss.get_num_gpus() > 0:
            if self._gpu_index is None:
                self._gpu_index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, self.index)
            return self._gpu_index
        return self.index

    def _search_ivfpq(self, q: torch.Tensor, k: int, bound: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        faiss = _import_faiss()
        fetch = min(k * self.refine_factor, self.size)
        q_np = q.cpu().numpy()
        cand = np.full((q.shape[0], fetch), -1, dtype=np.int64)
        if bound is None:
            _, cand[:] = self._faiss_index().search(q_np, fetch)
        else:  # one call per distinct bound (a few per step): faiss selectors apply to a whole call
            bound_np = bound.cpu().numpy()
            for b in np.unique(bound_np):
                rows = np.nonzero(bound_np == b)[0]
                if b <= self.first_uid:
                    continue
                selector = faiss.IDSelectorRange(self.first_uid, int(b))
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self.nprobe)
                _, cand[rows] = self.index.search(q_np[rows], fetch, params=params)
        cand_t = torch.from_numpy(cand).to(self.device)
        valid = cand_t >= 0
        cand_slots = torch.where(valid, cand_t % self.capacity, 0)
        exact = torch.einsum("qd,qfd->qf", q, self.keys[cand_slots]).masked_fill(~valid, float("-inf"))
        kk = min(k, fetch)
        top, pos = exact.topk(kk, dim=-1)
        sims = torch.full((q.shape[0], k), float("-inf"), device=self.device)
        slots = torch.full((q.shape[0], k), -1, dtype=torch.long, device=self.device)
        sims[:, :kk] = top
        slots[:, :kk] = torch.where(torch.isfinite(top), cand_slots.gather(1, pos), -1)
        return sims, slots

    # --- diagnostics ------------------------------------------------------------------------------
    def list_imbalance(self) -> float:
        """IVF list imbalance (`sum n_i^2 * nlist / N^2`, 1.0 = perfectly even; 0.0 when untrained)."""
        if self.index is None or self.size == 0:
            return 0.0
        sizes = np.array([self.index.invlists.list_size(i) for i in range(self.nlist)], dtype=np.float64)
        return float((sizes**2).sum() * self.nlist / sizes.sum() ** 2)

    @torch.no_grad()
    def recall_at_k(self, queries: torch.Tensor, k: int = 10) -> float:
        """Fraction of the exact top-`k` that the current index returns for `queries [Q, D]`."""
        q = F.normalize(queries.to(self.device, torch.float32), dim=-1)
        _, truth = self._search_exact(q, k, None)
        _, got = self.search(queries, k)
        hits = (truth.unsqueeze(-1) == got.unsqueeze(-2)) & (truth.unsqueeze(-1) >= 0)
        return float(hits.any(-1).sum() / (truth >= 0).sum().clamp_min(1))

    # --- checkpointing ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to answer searches identically after `load_state_dict` (CPU tensors)."""
        order = self._ordered()
        index_bytes = None
        if self.index is not None:
            faiss = _import_faiss()
            index_bytes = torch.from_numpy(faiss.serialize_index(self.index).copy())
        return {
            **{name: getattr(self, name)[order].cpu() for name in self._columns()},
            "next_uid": self.next_uid,
            "rebuilds": self.rebuilds,
            "index": index_bytes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = state["keys"].shape[0]
        if n > self.capacity or state["keys"].shape[1:] != (self.key_size,):
            raise ValueError(
                f"checkpointed store holds {n} keys of size {tuple(state['keys'].shape[1:])}; this store has "
                f"capacity {self.capacity} and key_size {self.key_size}: build it with the checkpoint's config"
            )
        self.next_uid, self.size, self.rebuilds = state["next_uid"], n, state["rebuilds"]
        slots = self._ordered()
        self.keys[slots] = state["keys"].to(self.device)
        self.values[slots] = state["values"].to(self.device)
        self.ticks[slots] = state["ticks"].to(self.device)
        # checkpoints from before these columns: not known
        for name, unknown in (("envs", -1), ("episodes", -1), ("returns", float("nan")), ("successors", -1)):
            getattr(self, name)[slots] = state[name].to(self.device) if name in state else unknown
        self.index = self._gpu_index = None
        if state["index"] is not None:
            self.index = _import_faiss().deserialize_index(state["index"].numpy())
            self.index.nprobe = self.nprobe
