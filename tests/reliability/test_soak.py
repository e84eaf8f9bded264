"""A short soak: after warm-up, nothing grows (process memory, the episodic store and its index, open
files, live Python objects). The long soak is `memrl bench soak` (figures in docs/reliability.md)."""

from __future__ import annotations

import pytest
import torch

from lightning_memrl.tools.bench.soak import DEFAULT_CONFIG, Sample, run_soak, summarize

SMALL = [
    "--data.num_envs", "4", "--data.rollout_steps", "8", "--data.seq_len", "8", "--data.num_minibatches", "2",
    "--data.eval_envs", "4", "--data.eval_episodes", "4", "--model.memory.init_args.capacity", "256",
    "--model.memory.init_args.train_threshold", "128", "--trainer.check_val_every_n_epoch", "10",
]  # fmt: skip
CAPACITY = 256


def test_a_short_soak_does_not_grow_after_warm_up(tmp_path):
    torch.set_num_threads(1)
    rebuild = tmp_path / "rebuild_often.yaml"  # the index is retrained 10 times
    rebuild.write_text(
        "trainer:\n  callbacks:\n    - class_path: lightning_memrl.callbacks.faiss_index_rebuild.FaissIndexRebuild\n"
        "      init_args: {every_n_iterations: 5, recall_sample: 16, k: 4}\n"
    )
    samples = run_soak([str(DEFAULT_CONFIG), str(rebuild)], 50, "cpu", tmp_path, every=10, extra=SMALL)
    assert [s.iteration for s in samples] == [1, 10, 20, 30, 40, 50]
    summary = summarize(samples, warmup=20)
    assert summary["rss_mb"]["growth"] < 16, summary
    assert summary["open_fds"]["growth"] <= 0, summary
    assert summary["python_objects"]["end"] - summary["python_objects"]["start"] < 500, summary
    steady = [s for s in samples if s.iteration >= 20]
    assert all(s.store_entries == CAPACITY for s in steady)  # full, wrapping, never past its capacity
    assert all(s.index_entries in (0, CAPACITY) for s in steady)  # the index follows evictions (faiss or exact)


def test_summary_measures_growth_from_the_first_sample_after_warm_up():
    def sample(iteration, rss):
        return Sample(iteration, 0.0, rss, 0.0, 0.0, 8, 8, 0.1, 5, 100)

    summary = summarize([sample(1, 50.0), sample(10, 100.0), sample(20, 101.0), sample(30, 102.0)], warmup=10)
    assert summary["rss_mb"] == {"start": 100.0, "end": 102.0, "growth": 2.0, "max": 102.0}
    assert summary["rss_mb_per_1000_iterations"] == 100.0
    assert summary["iterations"] == 30


@pytest.mark.gpu
def test_a_short_gpu_soak_holds_gpu_memory_flat(tmp_path):
    samples = run_soak([str(DEFAULT_CONFIG)], 100, "cuda", tmp_path, every=10)
    summary = summarize(samples, warmup=30)
    assert summary["gpu_allocated_mb"]["growth"] < 1, summary
    assert summary["gpu_reserved_mb"]["growth"] < 32, summary
    assert summary["rss_mb"]["growth"] < 32, summary
    assert summary["store_entries"]["max"] == 2048  # the config's capacity
