"""A fit killed with SIGKILL anywhere (collection, update, checkpoint write, evaluation) and continued with
`--ckpt_path last` ends with the weights and results of an uninterrupted run; a checkpoint that cannot be
used is an error that names it and says what to do."""

from __future__ import annotations

import pytest
import torch

from lightning_memrl.errors import ConfigError
from lightning_memrl.plugins.checkpoint_io import read_checkpoint
from lightning_memrl.tools.main import main
from tests.reliability.faults import InjectedFault
from tests.reliability.helpers import assert_same_weights, fault_config, other_filesystem_tmpdir, results
from tests.reliability.processes import run_memrl

KILL_POINTS = {
    "collect": {"at": "collect", "iteration": 2, "step": 5},
    "update": {"at": "update", "iteration": 3, "step": 1},
    "checkpoint_write": {"at": "checkpoint", "iteration": 3},
    "validate": {"at": "validate", "iteration": 3, "step": 2},
    "final_evaluation": {"at": "final_evaluation", "step": 1},
}


@pytest.fixture(scope="module")
def uninterrupted(tiny_config, tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    assert main(["fit", "--config", str(tiny_config), "--trainer.default_root_dir", str(root)]) == 0
    return root


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_fit_killed_anywhere_continues_to_the_same_weights_and_results(point, tiny_config, uninterrupted, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    fault = fault_config(tmp_path / "fault.yaml", **KILL_POINTS[point])
    fit = ["fit", "--config", str(tiny_config), "--trainer.default_root_dir", str(run)]
    code = run_memrl([*fit, "--config", str(fault)], tmp_path / "killed.log", env=other_filesystem_tmpdir(run))
    assert code == -9, (tmp_path / "killed.log").read_text()[-3000:]
    assert not (run / "results.json").exists()

    assert main([*fit, "--ckpt_path", "last"]) == 0
    assert results(run) == results(uninterrupted)
    assert_same_weights(run / "checkpoints" / "last.ckpt", uninterrupted / "checkpoints" / "last.ckpt")


def test_a_fit_stopped_between_validations_keeps_every_finished_iteration(tiny_config, tmp_path):
    fault = fault_config(tmp_path / "fault.yaml", at="update", iteration=2, action="raise")
    fit = ["fit", "--config", str(tiny_config), "--config", str(fault), "--trainer.default_root_dir", str(tmp_path)]
    with pytest.raises(InjectedFault):
        main([*fit, "--trainer.check_val_every_n_epoch", "10"])
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["epoch"] == 1  # iterations 0 and 1


def test_a_truncated_checkpoint_names_the_file_and_the_way_out(tiny_config, uninterrupted, tmp_path, capsys):
    run = tmp_path / "run" / "checkpoints"
    run.mkdir(parents=True)
    data = (uninterrupted / "checkpoints" / "last.ckpt").read_bytes()
    (run / "last.ckpt").write_bytes(data[: len(data) // 2])
    (run / "epoch=4-step=20.ckpt").write_bytes(data)
    fit = ["fit", "--config", str(tiny_config), "--trainer.default_root_dir", str(tmp_path / "run")]
    code = main([*fit, "--ckpt_path", "last"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"checkpoint {run / 'last.ckpt'} is truncated" in err
    assert "epoch=4-step=20.ckpt" in err and "start over without --ckpt_path" in err
    assert "Traceback" not in err


def test_a_file_that_is_not_a_lightning_checkpoint_is_named(tiny_config, tmp_path, capsys):
    weights_file = tmp_path / "weights.pt"
    torch.save({"encoder.weight": torch.zeros(2)}, weights_file)
    assert main(["fit", "--config", str(tiny_config), "--ckpt_path", str(weights_file)]) == 2
    err = capsys.readouterr().err
    assert f"{weights_file} is a PyTorch file but not a Lightning checkpoint" in err and "Traceback" not in err
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="notes.ckpt is truncated or not a PyTorch file"):
        read_checkpoint(text)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (["--model.controller.init_args.hidden_size", "16"], "controller.weight_ih [24, 8] -> [48, 16]"),
        (["--data.num_envs", "8"], "data.num_envs is 8 here, 4 in the checkpoint"),
    ],
)
def test_a_checkpoint_of_another_config_names_the_file_the_difference_and_its_config(
    override, named, tiny_config, uninterrupted, tmp_path, capsys
):
    ckpt = uninterrupted / "checkpoints" / "last.ckpt"
    fit = ["fit", "--config", str(tiny_config), "--trainer.default_root_dir", str(tmp_path), *override]
    assert main([*fit, "--ckpt_path", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {ckpt} does not fit this run" in err and named in err
    assert f"Continue it with its config ({uninterrupted / 'config.yaml'})" in err


def test_testing_a_checkpoint_with_other_data_settings_is_allowed(tiny_config, uninterrupted, tmp_path):
    """Evaluation needs no rollout state: `memrl test` of a checkpoint may use another num_envs."""
    ckpt = uninterrupted / "checkpoints" / "last.ckpt"
    test = ["test", "--config", str(tiny_config), "--trainer.default_root_dir", str(tmp_path)]
    assert main([*test, "--data.num_envs", "8", "--ckpt_path", str(ckpt)]) == 0
