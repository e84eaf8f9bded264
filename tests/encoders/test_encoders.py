"""Encoders chosen by the observation space: shapes, layouts and scaling, and exact replay with each."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.encoders import DiscreteEmbedding, FlatEncoder, ImageEncoder, ObservationEncoder, make_encoder
from lightning_memrl.envs import gym_spaces
from lightning_memrl.envs.gym_spaces import env_spec, image_layout
from lightning_memrl.errors import ConfigError
from lightning_memrl.specs import EnvSpec, ObservationPart
from tests.envs import toy_gym_envs  # noqa: F401  (registers Spaces-v0)

S = gym.spaces
U8 = np.uint8
# name -> (observation space, the CNN `auto` picks for its image part, or None)
SPACES = {
    "grid_hwc": (S.Box(0, 255, (7, 7, 3), U8), "grid"),
    "grid_chw": (S.Box(0, 255, (3, 7, 7), U8), "grid"),
    "small_gray": (S.Box(0, 255, (24, 24), U8), "small"),
    "nature_hwc": (S.Box(0, 255, (40, 40, 3), U8), "nature"),
    "stacked_hwc": (S.Box(0, 255, (2, 7, 7, 3), U8), "grid"),
    "stacked_chw": (S.Box(0, 255, (2, 1, 8, 8), U8), "grid"),
    "discrete": (S.Discrete(4), None),
    "multi_discrete": (S.MultiDiscrete([3, 2]), None),
    "tuple": (S.Tuple((S.Discrete(2), S.Discrete(4))), None),
    "dict_minigrid": (
        S.Dict({"image": S.Box(0, 255, (7, 7, 3), U8), "direction": S.Discrete(4), "mission": S.Text(8)}),
        "grid",
    ),  # fmt: skip
    "vector": (S.Box(-1.0, 1.0, (5,), np.float32), None),
}


def _spec(space):
    return env_spec(space, S.Discrete(3))


@pytest.mark.parametrize(
    ("shape", "dtype", "layout"),
    [((7, 7, 3), U8, "hwc"), ((3, 84, 84), U8, "chw"), ((84, 84, 4), U8, "hwc"), ((4, 84, 84), U8, "chw"),
     ((84, 84), U8, "hw"), ((84, 84), np.float32, None), ((4, 84, 84, 3), U8, "shwc"), ((5,), np.float32, None)],
)  # fmt: skip
def test_image_layouts_are_read_from_the_shape(shape, dtype, layout):
    assert image_layout(S.Box(0, 255, shape, dtype)) == layout


@pytest.mark.parametrize("name", sorted(SPACES))
def test_each_encoder_maps_any_leading_dims_to_the_controller_size(name):
    space, cnn = SPACES[name]
    spec = _spec(space)
    encoder = make_encoder(spec, 32)
    images = [m for m in encoder.modules() if isinstance(m, ImageEncoder)]
    assert [m.cnn for m in images] == ([cnn] if cnn else [])
    if name == "vector":
        assert isinstance(encoder, FlatEncoder)
    if name in ("discrete", "tuple", "multi_discrete"):
        assert any(isinstance(m, DiscreteEmbedding) for m in encoder.modules())
    for lead in [(6,), (2, 3)]:
        x = torch.rand(*lead, spec.observation_size) * 255
        y = encoder(x)
        assert y.shape == (*lead, 32) and y.dtype == torch.float32 and torch.isfinite(y).all()
    # sequence and step give the same features: no batch statistics anywhere (a batch's convolution may round
    # differently from a step's, about 1e-6 relative: a statistic of the batch would move them by far more)
    x = torch.rand(4, 5, spec.observation_size) * 255
    torch.testing.assert_close(encoder(x)[:, 2], encoder(x[:, 2]), rtol=1e-5, atol=1e-4)


def test_text_keys_are_dropped_with_a_logged_note_once(caplog, monkeypatch):
    monkeypatch.setattr(gym_spaces, "_NOTED", set())
    space = SPACES["dict_minigrid"][0]
    spec = _spec(space)
    assert [p.name for p in spec.parts] == ["direction", "image"]
    assert spec.observation_size == 4 + 147
    assert "['mission']" in caplog.text and "dropped" in caplog.text
    caplog.clear()
    _spec(space)  # the probe, the training envs and the evaluation envs all describe the same space
    assert "mission" not in caplog.text


@pytest.mark.parametrize(
    ("shape", "layout"), [((7, 6, 3), "hwc"), ((3, 7, 6), "chw"), ((7, 6), "hw"), ((2, 7, 6, 3), "shwc")]
)
def test_images_reach_the_cnn_as_scaled_nchw(shape, layout):
    """uint8 values are scaled by 1/255 and every layout is put channels first (stacked frames as channels)."""
    part = ObservationPart("image", "image", shape, layout=layout, scale=1 / 255)
    raw = torch.randint(0, 256, (2, *shape)).float()
    nchw = ImageEncoder(part, 8, "grid").to_nchw(raw.reshape(2, -1))
    expected = {
        "hwc": lambda r: r.permute(0, 3, 1, 2),
        "chw": lambda r: r,
        "hw": lambda r: r.unsqueeze(1),
        "shwc": lambda r: r.permute(0, 1, 4, 2, 3).reshape(2, 6, 7, 6),
    }[layout](raw) / 255
    torch.testing.assert_close(nchw, expected)
    assert nchw.shape[-2:] == (7, 6) and nchw.max() <= 1.0


def test_a_discrete_embedding_looks_up_the_one_hot_value():
    emb = DiscreteEmbedding((3, 2), embedding_size=4)
    one_hot = torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0]])  # values 2 and 0
    expected = torch.cat([emb.embeddings[0].weight[2], emb.embeddings[1].weight[0]])
    torch.testing.assert_close(emb(one_hot)[0], expected)


def test_the_encoder_override_and_its_errors():
    spec = _spec(SPACES["dict_minigrid"][0])
    assert isinstance(make_encoder(spec, 16, "flat"), ObservationEncoder)  # one linear layer over every column
    assert not any(isinstance(m, ImageEncoder) for m in make_encoder(spec, 16, "flat").modules())
    big = _spec(SPACES["nature_hwc"][0])
    assert [m.cnn for m in make_encoder(big, 16, "small").modules() if isinstance(m, ImageEncoder)] == ["small"]
    with pytest.raises(ConfigError, match="small CNN needs images of at least 11"):
        RecurrentPPO(GRU(16), env_spec=spec, encoder="small")
    with pytest.raises(ConfigError, match="no image part"):
        RecurrentPPO(GRU(16), env_spec=_spec(SPACES["vector"][0]), encoder="nature")
    with pytest.raises(ConfigError, match="model.encoder must be one of"):
        RecurrentPPO(GRU(16), env_spec=spec, encoder="resnet")


def test_specs_without_parts_keep_the_original_encoder_and_its_checkpoint_keys():
    agent = RecurrentPPO(GRU(16), env_spec=EnvSpec(observation_size=5, num_actions=3))
    assert isinstance(agent.encoder, FlatEncoder)
    assert {k for k in agent.state_dict() if k.startswith("encoder.")} == {"encoder.0.weight", "encoder.0.bias"}


def test_a_spec_with_parts_round_trips_through_plain_data():
    spec = _spec(SPACES["dict_minigrid"][0])
    assert EnvSpec(**dataclasses.asdict(spec)) == spec  # how the CLI serialises and reads it back


def test_a_spec_pickled_before_observation_parts_existed_loads_with_weights_only(tmp_path):
    spec = EnvSpec(observation_size=5, num_actions=3)
    del spec.__dict__["observation"]  # what an earlier checkpoint's pickle restores
    torch.save({"env_spec": spec}, tmp_path / "old.ckpt")
    loaded = torch.load(tmp_path / "old.ckpt", weights_only=True)["env_spec"]
    assert loaded.observation == () and loaded.parts[0].kind == "vector"
    new = _spec(SPACES["dict_minigrid"][0])
    torch.save({"env_spec": new}, tmp_path / "new.ckpt")
    assert torch.load(tmp_path / "new.ckpt", weights_only=True)["env_spec"] == new


@pytest.mark.parametrize("name", sorted(SPACES))
@pytest.mark.parametrize("burn_in", [0, 3])
def test_replay_from_stored_states_is_exact_with_every_encoder(name, burn_in):
    """PPO ratio == 1 and values equal on the first pass, with resets inside sequences."""
    dm = RolloutDataModule(
        env="gym:Spaces-v0", env_kwargs={"observation_space": SPACES[name][0], "episode_length": 5},
        num_envs=3, rollout_steps=16, seq_len=8, burn_in=burn_in, num_minibatches=2, update_epochs=1, seed=1,
    )  # fmt: skip
    agent = RecurrentPPO(GRU(16), env_spec=dm.env_spec)
    with torch.no_grad():
        agent.actor.weight.mul_(300.0)
    dm.setup("fit")
    for _ in range(2):
        for batch in dm.iterate(agent):
            assert batch.starts[:, burn_in:].any()
            log_prob, _, value = agent.evaluate_sequences(batch)
            ratio = (log_prob - batch.log_probs).exp()
            torch.testing.assert_close(ratio, torch.ones_like(ratio), atol=1e-5, rtol=0)
            torch.testing.assert_close(value, batch.values, atol=1e-5, rtol=1e-5)
    dm.teardown("fit")


@pytest.mark.parametrize("name", ["dict_minigrid", "stacked_hwc", "tuple"])
def test_acting_step_by_step_equals_the_sequence_with_every_encoder(name):
    spec = _spec(SPACES[name][0])
    agent = RecurrentPPO(GRU(16), env_spec=spec)
    gen = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (3, 7, spec.observation_size), generator=gen).float()  # uint8 values
    reset = torch.rand(3, 7, generator=gen) < 0.3
    state = agent.initial_state(3)
    seq, _ = agent._features_sequence(obs, state, reset)
    steps = []
    for t in range(7):
        f, state = agent._features_step(obs[:, t], state, reset[:, t])
        steps.append(f)
    torch.testing.assert_close(torch.stack(steps, 1), seq, atol=1e-4, rtol=1e-4)  # batched vs per-step matmuls


@pytest.mark.parametrize(
    ("side", "pooled", "features"), [(7, True, 64), (9, True, 256), (6, False, 576), (4, False, 64)]
)
def test_the_grid_cnn_pools_after_its_first_convolution_from_7_px(side, pooled, features):
    """MiniGrid's 7x7 view: 7 -> 6 -> pool 3 -> 2 -> 1, so the linear layer reads 64 features, not 1,024."""
    part = ObservationPart("image", "image", (side, side, 3), layout="hwc", scale=1 / 255)
    encoder = ImageEncoder(part, 16, "grid")
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in encoder.convs) == pooled
    assert encoder.head[0].in_features == features
    assert encoder(torch.rand(3, part.size)).shape == (3, 16)
