"""The default agent for gym envs: `configs/agents/gym_default.yaml`, used when only `--data.env gym:<id>` is given."""

import pytest

from lightning_memrl.cli import MemRLCLI
from lightning_memrl.encoders import FlatEncoder, ImageEncoder
from lightning_memrl.tools.main import GYM_DEFAULT, main, with_gym_default


def test_only_a_gym_env_gets_the_default_config_first():
    assert with_gym_default(["fit", "--data.env", "gym:CartPole-v1"]) == [
        "fit", "--config", str(GYM_DEFAULT), "--data.env", "gym:CartPole-v1",
    ]  # fmt: skip
    assert with_gym_default(["test", "--data.env=gym:CartPole-v1"])[1:3] == ["--config", str(GYM_DEFAULT)]
    for unchanged in (
        ["fit", "--config", "x.yaml", "--data.env", "gym:CartPole-v1"],
        ["fit", "--data.env", "delayed_cue"],
        ["fit"],
        ["suite", "--data.env", "gym:CartPole-v1"],
    ):
        assert with_gym_default(unchanged) == unchanged


def _build(*flags):
    return MemRLCLI(args=["--config", str(GYM_DEFAULT), *flags, "--trainer.logger", "false"], run=False)


def test_the_default_takes_a_gym_env_with_one_flag():
    cli = _build("--data.env", "gym:CartPole-v1")
    assert cli.datamodule.env_name == "gym:CartPole-v1"
    assert isinstance(cli.model.encoder, FlatEncoder)


def test_the_default_takes_minigrid_images_through_the_wrapper_config():
    pytest.importorskip("minigrid")  # the [envs] extra
    cli = _build(
        "--data.env", "gym:MiniGrid-MemoryS7-v0", "--data.wrappers", "[{class_path: minigrid.wrappers.ImgObsWrapper}]"
    )
    assert [m.cnn for m in cli.model.modules() if isinstance(m, ImageEncoder)] == ["grid"]


def test_memrl_fit_with_only_a_gym_env_runs_the_default_agent(tmp_path, capsys):
    args = ["fit", "--data.env", "gym:CartPole-v1", "--trainer.max_epochs", "1", "--data.eval_episodes", "16",
            "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"]  # fmt: skip
    assert main(args) == 0
    assert "using the default gym agent" in capsys.readouterr().out
    assert list(tmp_path.glob("**/results.json"))
