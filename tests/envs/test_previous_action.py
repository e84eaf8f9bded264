"""`data.previous_action`: each observation ends with the action of the step before, zeros where an episode starts."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.encoders.observation import FlatEncoder, make_encoder
from lightning_memrl.envs.previous_action import PreviousActionObservation
from lightning_memrl.envs.registry import make_task
from lightning_memrl.specs import ObservationPart, env_spec_of
from tests.envs import toy_gym_envs  # noqa: F401  (registers Spaces-v0)


def _random_actions(n: int, num_actions: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(num_actions, (n,), generator=generator)


def test_observations_end_with_the_previous_action_and_start_episodes_with_zeros():
    inner = make_task("delayed_cue", 5, horizon=4, num_cues=3, seed=0)
    task = PreviousActionObservation(make_task("delayed_cue", 5, horizon=4, num_cues=3, seed=0))
    a = inner.num_actions
    assert task.observation_size == inner.observation_size + a
    assert task.num_actions == a and task.horizon == 4  # the rest is the task's own

    obs, _ = task.reset()
    inner_obs, _ = inner.reset()
    torch.testing.assert_close(obs, torch.cat([inner_obs, torch.zeros(5, a)], -1))
    generator = torch.Generator().manual_seed(0)
    for _step in range(9):  # two whole episodes and a bit: every row ends some episode
        actions = _random_actions(5, a, generator)
        obs, reward, terminated, truncated, info = task.step(actions)
        inner_obs, inner_reward, *_, inner_info = inner.step(actions)
        torch.testing.assert_close(obs[:, : inner.observation_size], inner_obs)
        torch.testing.assert_close(reward, inner_reward)
        ended = terminated | truncated
        expected = torch.nn.functional.one_hot(actions, a).float() * ~ended[:, None]
        torch.testing.assert_close(obs[:, inner.observation_size :], expected)
        # the finished episode's last observation saw the action that ended it
        final = info["final_observation"]
        torch.testing.assert_close(final[:, : inner.observation_size], inner_info["final_observation"])
        torch.testing.assert_close(final[:, inner.observation_size :], torch.nn.functional.one_hot(actions, a).float())


@pytest.mark.parametrize(
    ("space", "columns"),
    [
        (gym.spaces.MultiDiscrete([3, 2]), 5),
        (gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32), 2),
        (gym.spaces.MultiBinary(3), 3),
    ],
)
def test_every_action_kind_is_appended(space, columns):
    inner = make_task("gym:Spaces-v0", 2, seed=0, action_space=space, episode_length=3)
    task = PreviousActionObservation(inner)
    assert task.observation_size == inner.observation_size + columns
    task.reset()
    sample = np.stack([space.sample() for _ in range(2)])
    actions = torch.as_tensor(sample, dtype=env_spec_of(inner).action_dtype)
    obs, *_ = task.step(actions)
    appended = obs[:, -columns:]
    if isinstance(space, gym.spaces.MultiDiscrete):
        assert appended.sum(-1).tolist() == [2.0, 2.0]  # one one-hot per component
        assert appended[0, :3].argmax().item() == sample[0, 0] and appended[0, 3:].argmax().item() == sample[0, 1]
    else:
        torch.testing.assert_close(appended, actions.float())


@pytest.mark.parametrize(
    "observation_space",
    [None, gym.spaces.Dict({"a": gym.spaces.Box(0.0, 1.0, shape=(2,)), "b": gym.spaces.Discrete(3)})],
)
def test_the_spec_gains_a_last_part(observation_space):
    inner = make_task("gym:Spaces-v0", 2, seed=0, observation_space=observation_space)
    spec = PreviousActionObservation(inner).env_spec
    inner_spec = env_spec_of(inner)
    assert spec.parts[:-1] == inner_spec.parts
    assert spec.parts[-1] == ObservationPart("previous_action", "vector", (3,))
    assert spec.observation_size == inner_spec.observation_size + 3
    plain = all(p.kind == "vector" for p in inner_spec.parts)
    assert isinstance(make_encoder(spec, 8), FlatEncoder) == plain  # a plain observation keeps the flat encoder


def test_the_data_module_wraps_training_evaluation_and_curriculum_envs():
    dm = RolloutDataModule(
        env="delayed_cue", env_kwargs={"horizon": 5, "num_cues": 4}, num_envs=4, rollout_steps=10, seq_len=5,
        num_minibatches=2, previous_action=True, eval_envs=4, eval_episodes=4,
    )  # fmt: skip
    plain = RolloutDataModule(env="delayed_cue", env_kwargs={"horizon": 5, "num_cues": 4})
    assert dm.env_spec.observation_size == plain.env_spec.observation_size + plain.env_spec.num_actions
    dm.setup("fit")
    assert isinstance(dm.collector.env, PreviousActionObservation)
    assert isinstance(dm.eval_env, PreviousActionObservation)
    dm.update_task(horizon=8)  # a curriculum's step: the spec is compared with the wrapped one
    with dm.evaluating(horizon=12):
        assert isinstance(dm.eval_env, PreviousActionObservation) and dm.eval_env.horizon == 12
    agent = RecurrentPPO(GRU(8), env_spec=dm.env_spec)
    assert set(dm.evaluate(agent)) >= {"success_rate"}


@pytest.mark.parametrize("burn_in", [0, 3])
def test_replay_from_stored_states_is_exact_with_the_previous_action(burn_in):
    dm = RolloutDataModule(
        env="delayed_cue", env_kwargs={"horizon": 5, "num_cues": 4}, num_envs=6, rollout_steps=24, seq_len=8,
        burn_in=burn_in, num_minibatches=3, update_epochs=1, seed=3, previous_action=True,
    )  # fmt: skip
    dm.setup("fit")
    agent = RecurrentPPO(GRU(16), env_spec=dm.env_spec)
    with torch.no_grad():  # actions that depend strongly on the observation, the previous action included
        agent.actor.weight.mul_(300.0)
    for _iteration in range(2):
        for batch in dm.iterate(agent):
            appended = batch.obs[..., -dm.env_spec.num_actions :]
            assert appended[batch.starts].abs().sum() == 0  # an episode's first step knows no action
            assert appended.sum() > 0
            log_prob, _, value = agent.evaluate_sequences(batch)
            ratio = (log_prob - batch.log_probs).exp()
            torch.testing.assert_close(ratio, torch.ones_like(ratio), atol=1e-5, rtol=0)
            torch.testing.assert_close(value, batch.values, atol=1e-5, rtol=1e-5)
