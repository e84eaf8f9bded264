"""Bad input through the gymnasium adapter: any space trains or is a ConfigError naming the env, the part and
the fix; an env that raises or returns NaN / inf / the wrong shape (sync or async) is an EnvError naming the
env, the step and the field, and a fit stopped by one leaves its last checkpoint usable."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data.batch import SequenceBatch
from lightning_memrl.data.collector import RolloutCollector, sequences
from lightning_memrl.envs.registry import make_task
from lightning_memrl.errors import ConfigError, EnvError
from lightning_memrl.plugins.checkpoint_io import read_checkpoint
from lightning_memrl.specs import env_spec_of
from lightning_memrl.tools.main import main
from tests.envs import toy_gym_envs  # noqa: F401  (registers Spaces-v0)
from tests.reliability import faulty_envs  # noqa: F401  (registers Faulty-v0)

S = gym.spaces
FLOATS = (np.float16, np.float32, np.float64)
INTS = (np.int8, np.int16, np.int32, np.int64, np.uint8)
SHAPES = ((), (1,), (3,), (2, 3), (2, 1, 2), (0,))


@st.composite
def boxes(draw, dtypes=FLOATS + INTS + (np.bool_,), shapes=SHAPES):
    dtype, shape = draw(st.sampled_from(dtypes)), draw(st.sampled_from(shapes))
    if dtype is np.bool_:
        return S.Box(0, 1, shape, dtype)
    if dtype in INTS:
        return S.Box(0 if dtype is np.uint8 else -3, 3, shape, dtype)
    low, high = draw(st.sampled_from([(-1.0, 1.0), (-np.inf, np.inf), (0.0, np.inf), (-5.0, 5.0)]))
    return S.Box(low, high, shape, dtype)


def leaves():
    return st.one_of(
        boxes(),
        st.builds(S.Discrete, st.integers(1, 4), start=st.integers(-3, 3)),
        st.builds(S.MultiDiscrete, st.sampled_from([[2], [2, 3], [[2, 3], [1, 2]]])),
        st.builds(S.MultiBinary, st.sampled_from([1, 3, [2, 2]])),
    )


UNSUPPORTED = st.sampled_from([S.Text(4), S.Sequence(S.Discrete(2)), S.Graph(S.Box(-1, 1, (2,)), None)])


def observation_spaces():
    """Leaves (odd dtypes and shapes, unsupported spaces now and then) nested in Tuples and Dicts."""
    return st.recursive(
        st.one_of(leaves(), leaves(), UNSUPPORTED),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(S.Tuple),
            st.dictionaries(st.sampled_from(["a", "b", "pos", "cue"]), inner, min_size=1, max_size=3).map(S.Dict),
        ),
        max_leaves=5,
    )


def action_spaces():
    return st.one_of(
        st.builds(S.Discrete, st.integers(1, 4), start=st.integers(-2, 2)),
        st.builds(S.MultiDiscrete, st.sampled_from([[2], [3, 2], [[2, 2], [3, 1]]])),
        st.builds(S.MultiBinary, st.sampled_from([1, 3, [2, 2]])),
        boxes(dtypes=(np.float32, np.float64), shapes=((), (2,), (2, 2), (0,))),
        st.sampled_from([S.Tuple([S.Discrete(2)]), S.Dict({"a": S.Discrete(2)}), S.Text(3)]),
    )


def _first_unsupported(space, top=True):
    """The first part the adapter cannot use (Text only at the top: inside a Dict / Tuple it is dropped)."""
    if isinstance(space, (S.Dict, S.Tuple)):
        parts = space.spaces.values() if isinstance(space, S.Dict) else space.spaces
        return next((bad for sub in parts if (bad := _first_unsupported(sub, top=False)) is not None), None)
    if isinstance(space, (S.Sequence, S.Graph)) or (top and isinstance(space, S.Text)):
        return space
    return None


def _entries(space):
    """How many numbers an observation of `space` gives the agent (Text parts give none)."""
    if isinstance(space, (S.Dict, S.Tuple)):
        parts = space.spaces.values() if isinstance(space, S.Dict) else space.spaces
        return sum(_entries(sub) for sub in parts)
    if isinstance(space, S.Discrete):
        return int(space.n)
    if isinstance(space, S.MultiDiscrete):
        return int(np.sum(space.nvec))
    return 0 if isinstance(space, S.Text) else int(np.prod(space.shape))


def expected_error(observation_space, action_space):
    """What the ConfigError must say for these spaces (`None`: the env trains)."""
    unsupported = _first_unsupported(observation_space)
    if unsupported is not None:
        return f"{type(unsupported).__name__}"
    if _entries(observation_space) == 0:  # the observation is checked before the action space
        return "has no entries"
    if isinstance(action_space, (S.Tuple, S.Dict, S.Text)):
        return f"action space {action_space}"
    if _entries(action_space) == 0:
        return "has no entries"
    return None


def _train_one_step(env) -> torch.Tensor:
    """Collect 4 steps and take one PPO loss and gradient: the loss."""
    model = RecurrentPPO(GRU(8), env_spec=env_spec_of(env))
    rollout = RolloutCollector(env, 4, 4, 0, 0.99, 0.95).collect(model)
    data = sequences(rollout, 4, 0)
    batch = SequenceBatch(**data, burn_in=0, rollout_stats=rollout.stats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a Trainer
        loss = model.training_step(batch, 0)["loss"]
    loss.backward()
    return loss


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observation_space=observation_spaces(), action_space=action_spaces())
@example(  # both wrong: the observation, checked first, is the one named
    observation_space=S.Tuple([S.Text(4, min_length=1)]), action_space=S.Tuple([S.Discrete(2)])
)
def test_any_space_trains_or_is_a_config_error_naming_the_part_and_the_fix(observation_space, action_space):
    expected = expected_error(observation_space, action_space)
    try:
        env = make_task("gym:Spaces-v0", 2, seed=0, observation_space=observation_space, action_space=action_space)
    except ConfigError as err:
        assert expected is not None, f"{observation_space} / {action_space} should train: {err}"
        assert str(err).startswith("gym env 'Spaces-v0': ") and expected in str(err)
        assert "Wrapper" in str(err)  # the fix: a gymnasium wrapper that maps it to what the agent reads
        return
    assert expected is None, f"{observation_space} / {action_space} was accepted: expected {expected!r}"
    loss = _train_one_step(env)
    assert torch.isfinite(loss)


FAULTS = {
    "raise": "raised RuntimeError at step 3: sensor failure. Fix the env (its traceback is above)",
    "nan_observation": "returned an observation that is not finite in float32 at step 3: observation['position'] "
    "in copies [1, 3] (e.g. nan)",
    "inf_reward": "returned a reward that is not finite at step 3: [inf, inf] in copies [1, 3]",
    "wrong_shape": "returned an observation that does not fit its space at step 3: observation['position'] has "
    "shape (3,), the space says (2,)",
    "out_of_range": "returned an observation that does not fit its space at step 3: observation['cue'] is 7, "
    "outside Discrete(3)",
    "missing_key": "observation lacks the keys ['cue'] of its space (it has ['position'])",
}


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_a_misbehaving_env_is_an_error_naming_the_env_the_step_and_the_field(vectorization):
    for fault, expected in FAULTS.items():
        env = make_task("gym:Faulty-v0", 4, seed=0, vectorization=vectorization, fault=fault, at_step=3)
        env.reset(seed=0)
        with pytest.raises(EnvError) as info:
            for _ in range(3):
                env.step(torch.zeros(4, dtype=torch.long))
        env.close()
        assert str(info.value).startswith(f"gym env 'Faulty-v0' ({vectorization}, 4 copies) "), fault
        assert expected in str(info.value), fault


def test_an_observation_beyond_float32_is_named_at_reset():
    space = S.Dict({"far": S.Box(-1e300, 1e300, (2,), np.float64)})
    env = make_task("gym:Spaces-v0", 2, seed=0, observation_space=space)
    with pytest.raises(EnvError, match=r"not finite in float32 at reset: observation\['far'\] in copies \[0, 1\]"):
        env.reset(seed=0)


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_a_fit_stopped_by_a_bad_env_names_it_and_continues_from_its_last_checkpoint(vectorization, tmp_path, capsys):
    broken = tmp_path / "env_is_broken"
    broken.touch()
    config = {
        "data": {
            "env": "gym:tests.reliability.faulty_envs:Faulty-v0", "vectorization": vectorization,
            "env_kwargs": {"fault": "nan_observation", "at_step": 19, "while_file": str(broken)},
            "num_envs": 4, "rollout_steps": 8, "seq_len": 8, "num_minibatches": 2, "update_epochs": 1,
            "eval_envs": 4, "eval_episodes": 4,
        },
        "model": {"controller": {"class_path": "lightning_memrl.controllers.GRU", "init_args": {"hidden_size": 8}}},
        "trainer": {
            "max_epochs": 4, "check_val_every_n_epoch": 10, "accelerator": "cpu", "logger": False,
            "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": str(tmp_path),
        },
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(path)]) == 1  # iteration 2 (env steps 17-24) meets step 19
    err = capsys.readouterr().err
    assert (
        f"gym env 'tests.reliability.faulty_envs:Faulty-v0' ({vectorization}, 4 copies) returned an observation "
        "that is not finite in float32 at step 19: observation['position'] in copies [1, 3]"
    ) in err
    assert "continue it with --ckpt_path last" in err
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["epoch"] == 1  # iterations 0 and 1, saved before the bad step

    broken.unlink()  # the env is fixed
    assert main(["fit", "--config", str(path), "--ckpt_path", "last"]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["env_steps"] == 4 * 4 * 8


def test_a_box_too_small_for_any_image_encoder_is_a_vector():
    """Found by the hypothesis test: a 2x1x2 Box was taken for an image, which no CNN reads (the agent failed)."""
    from lightning_memrl.envs.gym_spaces import observation_parts

    assert [p.kind for p in observation_parts(S.Box(-1, 1, (2, 1, 2)))] == ["vector"]
    assert [p.kind for p in observation_parts(S.Box(0, 255, (3, 5), np.uint8))] == ["vector"]
    assert [p.kind for p in observation_parts(S.Box(0, 255, (4, 4, 3), np.uint8))] == ["image"]
