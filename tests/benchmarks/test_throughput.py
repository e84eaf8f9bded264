"""The throughput benchmark runs and reports consistent figures (values are not asserted: no timed tests)."""

import json

from lightning_memrl.cli import main


def test_throughput_benchmark_reports(tmp_path, capsys):
    out = tmp_path / "t.json"
    args = ["bench", "throughput", "--num-envs", "8", "--hidden", "8", "--rollout-steps", "16", "--seq-len", "8"]
    assert main([*args, "--iterations", "1", "--warmup", "1", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["env_steps_per_s"] > 0
    assert abs(result["collect_share"] + result["train_share"] - 1) < 1e-6
    assert "env-steps/s end to end" in capsys.readouterr().out


def test_throughput_benchmark_takes_any_benchmarked_controller(tmp_path):
    out = tmp_path / "t.json"
    args = ["bench", "throughput", "--num-envs", "4", "--hidden", "16", "--rollout-steps", "8", "--seq-len", "8"]
    args += ["--controller", "mamba2", "--mamba-backend", "torch", "--horizon", "6"]
    assert main([*args, "--iterations", "1", "--warmup", "1", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["controller"] == "mamba2-16" and result["horizon"] == 6 and result["env_steps_per_s"] > 0
