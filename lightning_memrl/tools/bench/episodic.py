"""`memrl bench episodic`: insert and search throughput of the episodic store, flat vs IVF-PQ.

    memrl bench episodic                      # 1M vectors of dim 128 on CPU
    memrl bench episodic --num-vectors 200000 --device cuda --json out.json

Keys are drawn from a Gaussian mixture (clustered, like embeddings); queries are perturbed stored
keys. Each row reports inserts/s (the IVF-PQ row includes training), queries/s at batch
`--query-batch`, and recall@k of the returned neighbours against exact search.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch

from lightning_memrl.memory.vector_store import VectorStore
from lightning_memrl.tools.bench.timing import median_seconds


def _data(n: int, dim: int, clusters: int, seed: int, device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(clusters, dim, generator=g)
    out = torch.empty(n, dim)
    for start in range(0, n, 262_144):  # in chunks: bounded temporary memory
        m = min(262_144, n - start)
        out[start : start + m] = centers[torch.randint(0, clusters, (m,), generator=g)] + 0.5 * torch.randn(
            m, dim, generator=g
        )
    return out.to(device)


def _time_store(
    store: VectorStore, keys: torch.Tensor, queries: torch.Tensor, args: argparse.Namespace
) -> tuple[float, float]:
    """Seconds to insert every key (in `insert_batch` chunks), then to answer every query."""
    empty = torch.zeros(args.insert_batch, 0, device=args.device)

    def insert_all() -> None:
        for i in range(0, args.num_vectors, args.insert_batch):
            chunk = keys[i : i + args.insert_batch]
            store.add(chunk, empty[: chunk.shape[0]])

    def search_all() -> None:
        for i in range(0, args.queries, args.query_batch):
            store.search(queries[i : i + args.query_batch], args.k)

    insert_s = median_seconds(insert_all, args.device)
    store.search(queries[: args.query_batch], args.k)  # warm-up
    return insert_s, median_seconds(search_all, args.device)


def run(args: argparse.Namespace) -> list[dict]:
    keys = _data(args.num_vectors, args.dim, args.clusters, 0, args.device)
    g = torch.Generator().manual_seed(1)
    queries = keys[torch.randint(0, args.num_vectors, (args.queries,), generator=g).to(args.device)]
    queries = queries + 0.1 * torch.randn(queries.shape, generator=g).to(args.device)
    rows = []
    for backend in args.backends:
        store = VectorStore(
            args.dim,
            0,
            capacity=args.num_vectors,
            backend="exact" if backend == "flat" else "ivfpq",
            nlist=args.nlist,
            m=args.m,
            nbits=args.nbits,
            nprobe=args.nprobe,
            refine_factor=args.refine_factor,
            train_threshold=args.num_vectors,
            device=args.device,
        )
        insert_s, search_s = _time_store(store, keys, queries, args)
        recall = store.recall_at_k(queries[: args.recall_queries], args.k) if backend != "flat" else 1.0
        row = {
            "backend": backend if backend == "flat" else f"ivfpq(nlist={args.nlist},m={args.m},nprobe={args.nprobe})",
            "device": args.device,
            "num_vectors": args.num_vectors,
            "dim": args.dim,
            "inserts_per_s": args.num_vectors / insert_s,
            "queries_per_s": args.queries / search_s,
            f"recall@{args.k}": recall,
        }
        rows.append(row)
        print(
            f"{row['backend']:<32} {args.device:<6} N={args.num_vectors:>9,} insert {row['inserts_per_s']:>12,.0f}/s  "
            f"search {row['queries_per_s']:>10,.0f} q/s  recall@{args.k} {recall:.3f}",
            flush=True,
        )
        del store
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, prog="memrl bench episodic", description=__doc__.splitlines()[0])
    p.add_argument("--num-vectors", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--clusters", type=int, default=4096)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backends", nargs="+", default=["flat", "ivfpq"], choices=["flat", "ivfpq"])
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--nbits", type=int, default=8)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--refine-factor", type=int, default=8)
    p.add_argument("--insert-batch", type=int, default=65_536)
    p.add_argument("--queries", type=int, default=4096)
    p.add_argument("--query-batch", type=int, default=256)
    p.add_argument("--recall-queries", type=int, default=512)
    p.add_argument("--threads", type=int, default=None, help="torch / faiss CPU threads")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            import faiss

            faiss.omp_set_num_threads(args.threads)
        except ImportError:
            pass
    rows = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0
