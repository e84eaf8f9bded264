"""`memrl bench controllers` runs end to end at tiny sizes and writes one JSON row per measurement."""

import json

import pytest

from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.bench import controllers as bench
from lightning_memrl.tools.main import main
from tests._kernels import gru_scan_on_cpu

NAMES = ["gru", "mamba2", "transformer", "cyborg_fusion"]  # a few, to stay fast; every name is built below


def test_bench_controllers_writes_a_row_per_controller_and_size(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "controllers", "--batch", "2", "--seq-len", "8", "--hidden", "32", "--repeats", "1"]
    argv += ["--act-steps", "2", "--context", "8", "--json", str(out), "--controllers", *NAMES]
    assert main(argv) == 0
    rows = json.loads(out.read_text())
    assert [r["controller"] for r in rows] == NAMES
    assert all(r["train_tokens_per_s"] > 0 and r["act_steps_per_s"] > 0 for r in rows)
    assert rows[0]["train_vs_gru"] == 1.0
    assert "mamba2" in capsys.readouterr().out


def test_bench_controllers_reports_what_ran_not_what_was_asked(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "controllers", "--batch", "2", "--seq-len", "8", "--hidden", "16", "--repeats", "1"]
    argv += ["--act-steps", "2", "--json", str(out), "--controllers", "gru", "mamba2", "lstm"]
    assert main(argv) == 0
    gru, mamba2, lstm = json.loads(out.read_text())
    assert gru["ran"] == {"GRU": gru_scan_on_cpu()}
    assert mamba2["ran"]["Mamba2Block"].startswith("torch (the inputs are on cpu")
    assert lstm["ran"] == {"controller": "pytorch"} and gru["device"] == "cpu"
    assert "GRU eager (the inputs are on cpu" in capsys.readouterr().out


def test_every_listed_controller_builds_at_the_benchmark_widths():
    for name, make in bench.controller_factories("torch", 16).items():
        for hidden in (128, 256):
            assert make(hidden).output_size == hidden, name


def test_unknown_controller_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown controllers"):
        bench.main(["--controllers", "gru", "mamba3", "--json", str(tmp_path / "x.json")])
