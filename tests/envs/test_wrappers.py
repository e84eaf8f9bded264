"""Gymnasium wrappers named in a config (`data.wrappers`): applied per env copy, in order, with clear errors."""

import gymnasium as gym
import numpy as np
import pytest

from lightning_memrl.cli import MemRLCLI
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.encoders import ImageEncoder, make_encoder
from lightning_memrl.envs.registry import make_task
from lightning_memrl.errors import ConfigError
from tests.envs import toy_gym_envs  # noqa: F401  (registers Spaces-v0)

IMAGE = gym.spaces.Box(0, 255, (7, 7, 3), np.uint8)
STACK = {"class_path": "gymnasium.wrappers.FrameStackObservation", "init_args": {"stack_size": 3}}
FLATTEN = {"class_path": "gymnasium.wrappers.FlattenObservation"}


def test_wrappers_apply_to_each_copy_in_order():
    env = make_task("gym:Spaces-v0", 2, wrappers=[STACK], observation_space=IMAGE)
    (part,) = env.env_spec.parts
    assert (part.kind, part.shape, part.layout) == ("image", (3, 7, 7, 3), "shwc")  # stacked frames of the image
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 3 * 147)
    env.close()
    flat = make_task("gym:Spaces-v0", 2, wrappers=[STACK, FLATTEN], observation_space=IMAGE)
    assert [p.kind for p in flat.env_spec.parts] == ["vector"]  # flattened after stacking: no image left
    flat.close()


def test_a_stacked_image_reaches_the_grid_cnn_with_frames_as_channels():
    env = make_task("gym:Spaces-v0", 1, wrappers=[STACK], observation_space=IMAGE)
    (cnn,) = [m for m in make_encoder(env.env_spec, 32).modules() if isinstance(m, ImageEncoder)]
    assert cnn.cnn == "grid" and cnn.convs[0].in_channels == 9
    env.close()


@pytest.mark.parametrize(
    ("wrappers", "match"),
    [
        ([{"class_path": "no_such_package.Wrapper"}], "cannot import 'no_such_package.Wrapper'"),
        ([{"class_path": "gymnasium.wrappers.FrameStackObservation", "init_args": {"bad": 1}}], "failed"),
        ([{"path": "gymnasium.wrappers.FlattenObservation"}], "class path with optional init_args"),
    ],
)
def test_bad_wrapper_entries_are_config_errors_naming_them(wrappers, match):
    with pytest.raises(ConfigError, match=match):
        make_task("gym:Spaces-v0", 1, wrappers=wrappers)


def test_wrappers_on_a_built_in_task_are_refused():
    with pytest.raises(ConfigError, match="gym:<id> envs only"):
        make_task("delayed_cue", 2, wrappers=[FLATTEN])


def test_the_config_key_reaches_the_env():
    stack = "[{class_path: gymnasium.wrappers.FrameStackObservation, init_args: {stack_size: 2}}]"
    args = ["--data.env", "gym:Spaces-v0", "--data.wrappers", stack, "--data.env_kwargs", "{episode_length: 4}",
            "--data.num_envs", "2", "--data.rollout_steps", "8", "--data.seq_len", "8", "--data.num_minibatches", "1",
            "--model.controller", "lightning_memrl.controllers.GRU", "--trainer.logger", "false"]  # fmt: skip
    cli = MemRLCLI(args=args, run=False)
    assert cli.datamodule.wrappers == [STACK | {"init_args": {"stack_size": 2}}]
    assert cli.datamodule.env_spec.observation_size == 2 * 3  # Spaces-v0's Box(3) stacked twice


def test_minigrid_through_the_wrapper_config_registers_on_import():
    pytest.importorskip("minigrid")  # the [envs] extra
    dm = RolloutDataModule(
        env="gym:MiniGrid-MemoryS7-v0", wrappers=[{"class_path": "minigrid.wrappers.ImgObsWrapper"}],
        num_envs=2, rollout_steps=8, seq_len=8, num_minibatches=1,
    )  # fmt: skip
    (part,) = dm.env_spec.parts
    assert (part.kind, part.shape, part.scale) == ("image", (7, 7, 3), 1 / 255)
    assert dm.env_spec.num_actions == 7
