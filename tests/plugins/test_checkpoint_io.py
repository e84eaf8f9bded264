"""AtomicCheckpointIO: a save is all or nothing, a failed one leaves the previous file and no litter."""

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightning_memrl.errors import ConfigError
from lightning_memrl.plugins import AtomicCheckpointIO, read_checkpoint
from lightning_memrl.plugins.checkpoint_io import partial_path, state_dict_problems, use_atomic_checkpoints

CHECKPOINT = {"state_dict": {"w": torch.ones(3)}, "pytorch-lightning_version": "2.6.0", "epoch": 1}


def test_save_then_load_round_trips_and_leaves_only_the_file(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint(CHECKPOINT, path)
    loaded = io.load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(3)) and loaded["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_a_save_that_fails_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint(CHECKPOINT, path)

    def half_then_fail(obj, handle):
        handle.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({**CHECKPOINT, "epoch": 2}, path)
    assert read_checkpoint(path)["epoch"] == 1
    assert not partial_path(path).exists()


def test_the_cli_gives_default_trainers_atomic_checkpoints_and_keeps_a_users_plugin(tmp_path):
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False)
    use_atomic_checkpoints(trainer)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)

    class Mine(TorchCheckpointIO):
        pass

    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, plugins=[Mine()])
    use_atomic_checkpoints(trainer)
    assert type(trainer.strategy.checkpoint_io) is Mine


def test_a_missing_file_and_a_state_dict_of_another_model_are_described(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_checkpoint(tmp_path / "nothing.ckpt")
    saved = {"a": torch.zeros(2, 3), "old": torch.zeros(1)}
    expected = {"a": torch.zeros(2, 4), "new": torch.zeros(1)}
    assert state_dict_problems(saved, expected) == [
        "parameters missing: new",
        "unknown parameters: old",
        "parameter shapes (checkpoint -> here): a [2, 3] -> [2, 4]",
    ]
    assert state_dict_problems(expected, expected) == []
    extra = {"memory._extra_state": {"size": 3}}  # a module's get_extra_state: anything, never a shape problem
    assert state_dict_problems({**expected, **extra}, {**expected, "memory._extra_state": {"size": 5}}) == []
