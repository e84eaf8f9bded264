"""VectorStore: exact retrieval, IVF-PQ recall, tick filtering, FIFO eviction, checkpoint round-trip."""

import pytest
import torch
import torch.nn.functional as F

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.vector_store import VectorStore


def _clustered(n: int, dim: int, clusters: int = 32, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(clusters, dim, generator=g)
    return centers[torch.randint(0, clusters, (n,), generator=g)] + noise * torch.randn(n, dim, generator=g)


def test_exact_search_returns_the_inserted_nearest_neighbours():
    keys = torch.randn(300, 16)
    store = VectorStore(16, 2, capacity=1000, backend="exact")
    store.add(keys, torch.randn(300, 2))
    sims, slots = store.search(keys[:50], k=3)
    assert torch.equal(slots[:, 0], torch.arange(50))  # each key is its own nearest neighbour
    expected = (F.normalize(keys[:50], dim=-1) @ F.normalize(keys, dim=-1).T).topk(3).values
    torch.testing.assert_close(sims, expected)


def test_missing_neighbours_are_marked():
    store = VectorStore(8, 1, capacity=10, backend="exact")
    store.add(torch.randn(2, 8), torch.randn(2, 1))
    sims, slots = store.search(torch.randn(3, 8), k=4)
    assert (slots[:, 2:] == -1).all() and torch.isinf(sims[:, 2:]).all() and (slots[:, :2] >= 0).all()


def test_before_tick_hides_later_entries():
    store = VectorStore(8, 1, capacity=100, backend="exact")
    keys = torch.randn(10, 8)
    store.add(keys, torch.zeros(10, 1), ticks=torch.arange(10))
    _, slots = store.search(keys, k=10, before_tick=torch.arange(10))
    for i in range(10):
        seen = slots[i][slots[i] >= 0]
        assert sorted(store.ticks[seen].tolist()) == list(range(i))


def test_env_window_keeps_one_env_between_two_ticks():
    store = VectorStore(8, 1, capacity=100, backend="exact")
    envs, ticks = torch.arange(3).repeat(10), torch.arange(10).repeat_interleave(3)  # 3 envs write ticks 0-9
    store.add(torch.randn(30, 8), torch.zeros(30, 1), ticks=ticks, envs=envs)
    store.add(torch.randn(2, 8), torch.zeros(2, 1), ticks=torch.tensor([4, 5]), envs=1)  # ticks need no order here
    _, slots = store.search(
        torch.randn(2, 8), 30, torch.tensor([7, 9]), env=torch.tensor([1, 2]), since_tick=torch.tensor([3, 0])
    )
    assert sorted(store.ticks[slots[0][slots[0] >= 0]].tolist()) == [3, 4, 4, 5, 5, 6]
    assert (store.envs[slots[1][slots[1] >= 0]] == 2).all() and (slots[1] >= 0).sum() == 9
    with pytest.raises(ValueError, match="together"):
        store.search(torch.randn(2, 8), k=3, env=torch.tensor([1, 2]))


def test_fifo_eviction_keeps_the_newest_entries():
    store = VectorStore(4, 1, capacity=5, backend="exact")
    values = torch.arange(12.0).unsqueeze(-1)
    for i in range(0, 12, 3):
        store.add(torch.randn(3, 4), values[i : i + 3])
    assert store.size == 5 and store.first_uid == 7
    _, slots = store.search(torch.randn(1, 4), k=5)
    assert sorted(store.values[slots[0], 0].tolist()) == [7.0, 8.0, 9.0, 10.0, 11.0]


def test_bad_configuration_is_named():
    with pytest.raises(ConfigError, match="backend"):
        VectorStore(8, 1, backend="hnsw")
    with pytest.raises(ConfigError, match="divide"):
        VectorStore(10, 1, m=4, backend="auto")
    with pytest.raises(ValueError, match=r"keys \[N, 8\]"):
        VectorStore(8, 1, backend="exact").add(torch.randn(2, 3), torch.randn(2, 1))


def test_ivfpq_recall_at_10_on_a_clustered_sample():
    pytest.importorskip("faiss")
    data = _clustered(8000, 32, clusters=800, noise=0.1)  # ~10 true neighbours per cluster
    store = VectorStore(
        32, 1, capacity=10_000, backend="ivfpq", nlist=32, m=8, nbits=6, nprobe=8, refine_factor=4, train_threshold=4000
    )
    store.add(data, torch.zeros(8000, 1))
    assert store.is_trained and store.index.ntotal == 8000
    queries = data[torch.randperm(8000)[:200]] + 0.01 * torch.randn(200, 32)
    assert store.recall_at_k(queries, k=10) >= 0.9


def test_ivfpq_eviction_and_tick_filter_stay_consistent():
    pytest.importorskip("faiss")
    data = _clustered(3000, 16, clusters=8)
    store = VectorStore(
        16, 1, capacity=2000, backend="ivfpq", nlist=8, m=4, nbits=6, nprobe=8, refine_factor=8, train_threshold=1000
    )
    for i in range(0, 3000, 500):
        store.add(data[i : i + 500], torch.zeros(500, 1), ticks=i // 500)
    assert store.size == 2000 and store.index.ntotal == 2000
    _, slots = store.search(data[:100], k=10, before_tick=torch.full((100,), 4))
    seen = store.ticks[slots[slots >= 0]]
    assert ((seen >= 2) & (seen < 4)).all()  # ticks 0-1 evicted, 4-5 written later


def test_checkpoint_round_trip_gives_identical_search_results():
    pytest.importorskip("faiss")
    data = _clustered(3000, 16, clusters=8)
    kwargs = dict(capacity=2500, backend="ivfpq", nlist=8, m=4, nbits=6, nprobe=4, train_threshold=1000)
    store = VectorStore(16, 3, **kwargs)
    store.add(data, torch.randn(3000, 3), ticks=torch.arange(3000) // 100, envs=torch.arange(3000) % 7)
    restored = VectorStore(16, 3, **kwargs)
    restored.load_state_dict(store.state_dict())
    queries = torch.randn(64, 16)
    for before in (None, torch.full((64,), 20)):
        a, b = store.search(queries, 10, before), restored.search(queries, 10, before)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(restored.envs[restored._ordered()], store.envs[store._ordered()])
    with pytest.raises(ConfigError, match="backend='exact'"):  # an env window needs exact search
        zeros = torch.zeros(2, dtype=torch.long)
        store.search(queries[:2], 3, torch.full((2,), 20), env=zeros, since_tick=zeros)
    torch.testing.assert_close(restored.values[b[1][b[1] >= 0]], store.values[a[1][a[1] >= 0]])


def test_rebuild_keeps_every_stored_vector():
    pytest.importorskip("faiss")
    data = torch.randn(2500, 16)
    store = VectorStore(16, 1, capacity=2000, backend="ivfpq", nlist=8, m=4, nbits=6, nprobe=8, train_threshold=1000)
    store.add(data, torch.zeros(2500, 1))
    before = store.keys.clone()
    store.rebuild()
    assert store.index.ntotal == store.size == 2000 and store.rebuilds == 2
    assert torch.equal(store.keys, before)
    _, slots = store.search(data[-2000:], k=10)  # every stored vector is still found (as itself)
    own = (store.keys[slots] - F.normalize(data[-2000:], dim=-1).unsqueeze(1)).abs().amax(-1) < 1e-6
    assert own.any(-1).float().mean() >= 0.99


@pytest.fixture(autouse=True, scope="module")
def _single_thread_faiss():
    # faiss' OpenMP threads spin against each other on a small shared CPU; one thread is much faster
    try:
        import faiss
    except ImportError:
        yield
        return
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)
