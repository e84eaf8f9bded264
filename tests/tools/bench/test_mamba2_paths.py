"""`memrl bench mamba2_paths` says what it needs on a machine without CUDA, and runs on one with it."""

import pytest
import torch

from lightning_memrl.errors import ConfigError, MissingDependencyError
from lightning_memrl.ops.ssd_mamba_ssm import mamba_ssm_available
from lightning_memrl.tools.bench import mamba2_paths as bench


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_without_cuda_the_error_names_the_device():
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        bench.main(["--hidden", "32"])


@pytest.mark.gpu
def test_tiny_run_prints_both_paths_and_the_scan(capsys):
    if not mamba_ssm_available():
        with pytest.raises(MissingDependencyError, match=r"lightning-memrl\[gpu\]"):
            bench.main(["--hidden", "32"])
        return
    assert bench.main(["--hidden", "32", "--batch", "2", "--seq-len", "64", "--scan", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "Mamba2-32 torch" in out and "Mamba2-32 mamba_ssm" in out and "SSD scan alone" in out
