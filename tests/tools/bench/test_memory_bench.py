"""`memrl bench memory` runs at a tiny size and writes its JSON report."""

import json

import pytest

from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.bench import memory as bench

TINY = ["--num-envs", "2", "--acting-steps", "2", "--seq-len", "4", "--batch-sequences", "2", "--hidden-size", "8"]


def test_bench_memory_reports_every_memory_relative_to_gru(tmp_path):
    out = tmp_path / "bench.json"
    assert bench.main([*TINY, "--repeats", "1", "--memories", "kv", "miras", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu"
    assert set(report["results"]) == {"gru", "kv", "miras"}
    assert report["results"]["gru"]["acting_overhead"] == 1.0
    for row in report["results"].values():
        assert row["acting_steps_per_s"] > 0 and row["training_tokens_per_s"] > 0


def test_bench_memory_rejects_unknown_memory():
    with pytest.raises(ConfigError, match="unknown memories"):
        bench.main([*TINY, "--memories", "faiss"])
