"""The throughput benchmark runs and reports consistent figures (values are not asserted: no timed tests)."""

import json

import pytest
import torch

from lightning_memrl.ops.kernel_choice import forget_warnings
from lightning_memrl.tools.main import main
from tests._kernels import gru_scan_on_cpu


@pytest.fixture(autouse=True)
def _fresh_warnings():
    forget_warnings()


def test_throughput_benchmark_reports(tmp_path, capsys):
    out = tmp_path / "t.json"
    args = ["bench", "throughput", "--num-envs", "8", "--hidden", "8", "--rollout-steps", "16", "--seq-len", "8"]
    assert main([*args, "--iterations", "1", "--warmup", "1", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["env_steps_per_s"] > 0
    assert abs(result["collect_share"] + result["train_share"] - 1) < 1e-6
    assert "env-steps/s end to end" in capsys.readouterr().out


def test_throughput_benchmark_prints_and_writes_what_ran(tmp_path, capsys):
    """`--fused-scan on` on a CPU runs the eager scan: the figure says so, not the request."""
    out = tmp_path / "t.json"
    args = ["bench", "throughput", "--num-envs", "4", "--hidden", "16", "--rollout-steps", "8", "--seq-len", "8"]
    with pytest.warns(UserWarning, match="GRU scan: triton was requested but cannot run"):
        assert main([*args, "--fused-scan", "on", "--iterations", "1", "--warmup", "1", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["fused_scan"] is True  # the request
    assert result["ran"]["GRU"] == gru_scan_on_cpu()  # what ran
    assert "[ran: GRU eager (the inputs are on cpu" in capsys.readouterr().out


def test_throughput_runs_under_the_asked_float32_matmul_precision_and_restores_it(tmp_path, capsys, monkeypatch):
    import lightning_memrl.tools.bench.throughput as throughput

    seen = []
    fit = throughput.L.Trainer.fit
    monkeypatch.setattr(
        throughput.L.Trainer, "fit", lambda *a, **k: seen.append(torch.get_float32_matmul_precision()) or fit(*a, **k)
    )
    out = tmp_path / "t.json"
    args = ["bench", "throughput", "--num-envs", "4", "--hidden", "8", "--rollout-steps", "8", "--seq-len", "8"]
    assert main([*args, "--iterations", "1", "--warmup", "1", "--matmul-precision", "high", "--json", str(out)]) == 0
    assert seen == ["high"] and torch.get_float32_matmul_precision() == "highest"
    (result,) = json.loads(out.read_text())
    assert result["matmul_precision"] == "high"
    assert "float32 matmuls high]" in capsys.readouterr().out


def test_throughput_profile_prints_the_top_ops(tmp_path, capsys):
    out = tmp_path / "t.json"
    args = ["bench", "throughput", "--num-envs", "4", "--hidden", "8", "--rollout-steps", "8", "--seq-len", "8"]
    assert main([*args, "--iterations", "1", "--warmup", "1", "--profile", "5", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "profile of the whole fit" in printed and "Self CPU" in printed and result["profile"] in printed
    lines = [line for line in result["profile"].splitlines() if line.strip() and not line.startswith("-")]
    assert len([line for line in lines if "Name" not in line and "total:" not in line]) == 5


def test_throughput_benchmark_takes_any_benchmarked_controller(tmp_path):
    out = tmp_path / "t.json"
    args = ["bench", "throughput", "--num-envs", "4", "--hidden", "16", "--rollout-steps", "8", "--seq-len", "8"]
    args += ["--controller", "mamba2", "--mamba-backend", "torch", "--horizon", "6"]
    assert main([*args, "--iterations", "1", "--warmup", "1", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["controller"] == "mamba2-16" and result["horizon"] == 6 and result["env_steps_per_s"] > 0


def test_ddp_throughput_counts_the_env_steps_of_every_rank(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "t.json"
    args = [sys.executable, "-m", "lightning_memrl", "bench", "throughput", "--devices", "2"]
    args += ["--num-envs", "4", "--hidden", "8", "--rollout-steps", "8", "--seq-len", "8"]
    args += ["--iterations", "1", "--warmup", "1", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(out.read_text())
    assert result["devices"] == 2 and result["env_steps_per_s"] > 0
    assert proc.stdout.count("env-steps/s end to end") == 1  # rank 0 alone reports


def test_throughput_takes_a_memory_and_runs_each_cuda_graphs_value(tmp_path, capsys):
    """`--memory kv_age --cuda-graphs off on`: two runs of GRU + KV memory, each saying how acting ran."""
    out = tmp_path / "t.json"
    args = ["bench", "throughput", "--num-envs", "4", "--hidden", "8", "--rollout-steps", "8", "--seq-len", "8"]
    args += ["--memory", "kv_age", "--cuda-graphs", "off", "on", "--iterations", "1", "--warmup", "1"]
    assert main([*args, "--json", str(out)]) == 0
    off, on = json.loads(out.read_text())
    assert off["agent"] == on["agent"] == "gru + KVMemory (kv_age)"
    assert (off["cuda_graphs"], on["cuda_graphs"]) == ("off", "on")
    assert off["ran"]["acting"] == "eager (data.cuda_graphs=off)"
    assert on["ran"]["acting"].startswith("eager (the envs are on cpu")  # this machine has no CUDA device
    printed = capsys.readouterr().out
    assert printed.count("gru + KVMemory (kv_age)") == 2 and "acting eager (data.cuda_graphs=off)" in printed
