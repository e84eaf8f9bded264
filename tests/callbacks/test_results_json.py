"""ResultsJson names the device that ran (for the suite's `machine`): `cpu`, or the CUDA device's name."""

import json

import pytest
import torch

from lightning_memrl.tools.main import main
from lightning_memrl.tools.suite.records import machine_description
from tests.test_cli import TINY, _log_dir


@pytest.mark.gpu
def test_a_gpu_run_names_its_gpu(tmp_path, capsys):
    args = ["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.accelerator", "gpu", "--trainer.devices", "1"]
    assert main([*args, "--trainer.default_root_dir", str(tmp_path)]) == 0
    results = json.loads((_log_dir(capsys) / "results.json").read_text())
    name = torch.cuda.get_device_name(0)
    assert results["device"] == name and name in machine_description(results["device"])
