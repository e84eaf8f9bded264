"""The gymnasium adapter: spaces, same-step autoreset, true returns, truncation bootstrap, errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from lightning_memrl.data.collector import RolloutCollector
from lightning_memrl.data.datamodule import RolloutDataModule
from lightning_memrl.data.policy import Action
from lightning_memrl.envs.gym_adapter import GymVectorTask, make_gym_task
from lightning_memrl.envs.gym_spaces import flat_size, flatten_batch
from lightning_memrl.envs.registry import make_task
from lightning_memrl.errors import ConfigError
from tests.envs import toy_gym_envs  # noqa: F401  (registers Counter-v0, Spaces-v0)

S = gym.spaces


def _episodes(env, steps, action=None):
    """Step `env` and return the finished episodes as (return, length, terminated, truncated, final_obs)."""
    n = env.num_envs
    env.reset(seed=0)
    ret, length, finished = np.zeros(n), np.zeros(n, dtype=int), []
    for _ in range(steps):
        act = torch.zeros(n, dtype=torch.long) if action is None else action
        obs, reward, term, trunc, info = env.step(act)
        ret += reward.numpy()
        length += 1
        for i in np.flatnonzero((term | trunc).numpy()):
            finished.append((ret[i], length[i], bool(term[i]), bool(trunc[i]), info["final_observation"][i].tolist()))
            assert obs[i].tolist() == [0.0], "the returned observation is the first of the next episode"
            ret[i], length[i] = 0.0, 0
    return finished


@pytest.mark.parametrize(
    ("env_kwargs", "length", "terminated"),
    [({"terminate_at": 2}, 2, True), ({"terminate_at": 5}, 3, False)],  # Counter-v0 has a 3-step limit
)
def test_true_returns_across_autoreset_termination_and_truncation(env_kwargs, length, terminated):
    env = make_task("gym:Counter-v0", 2, seed=0, **env_kwargs)
    finished = _episodes(env, 4 * length)
    assert len(finished) == 2 * 4
    for ret, ep_len, term, trunc, final_obs in finished:
        assert (ret, ep_len) == (length * (length + 1) / 2, length)  # reward t + 1 at step t
        assert (term, trunc) == (terminated, not terminated)
        assert final_obs == [float(length)]  # the last observation of the episode, not the reset one


class _ValueIsObservation:
    """A policy stub whose value is `10 * obs[0]`: bootstrapping from the wrong observation shows."""

    def initial_state(self, batch_size, device=None):
        return torch.zeros(batch_size, 1, device=device)

    def act(self, obs, state, reset, *, greedy=False, generator=None):
        n = obs.shape[0]
        return Action(torch.zeros(n, dtype=torch.long), torch.zeros(n), 10 * obs[:, 0], state)

    def predict_value(self, obs, state, reset):
        return 10 * obs[:, 0]

    def end_rollout(self, advantages, rewards, terminated, truncated):
        pass


def test_truncation_bootstraps_from_the_final_observation_and_no_reset_step_is_stored():
    env = make_task("gym:Counter-v0", 2, seed=0, terminate_at=5)  # always truncated after 3 steps
    collector = RolloutCollector(env, rollout_steps=9, seq_len=9, burn_in=0, gamma=0.5, gae_lambda=1.0)
    rollout = collector.collect(_ValueIsObservation())
    t = rollout.obs[:, :, 0]  # every stored step is a real transition from obs t
    assert t[:, 0].tolist() == [0, 1, 2] * 3
    assert rollout.starts[:, 0].tolist() == [True, False, False] * 3
    assert rollout.truncated[:, 0].tolist() == [False, False, True] * 3
    assert not rollout.terminated.any()
    # at a truncation the next value is V(final obs t=3) = 30, not V(reset obs t=0) = 0
    assert rollout.next_values[2, 0] == 30.0
    # return of the last step before the cut: r + gamma * V(final) = 3 + 0.5 * 30
    torch.testing.assert_close(rollout.returns[2, 0], torch.tensor(18.0))
    # and of the first step, with gamma 0.5 and lambda 1: 1 + .5 * 2 + .25 * 18
    torch.testing.assert_close(rollout.returns[0, 0], torch.tensor(1 + 0.5 * (2 + 0.5 * 18.0)))


def test_termination_does_not_bootstrap():
    env = make_task("gym:Counter-v0", 1, seed=0, terminate_at=2)
    collector = RolloutCollector(env, rollout_steps=4, seq_len=4, burn_in=0, gamma=0.5, gae_lambda=1.0)
    rollout = collector.collect(_ValueIsObservation())
    assert rollout.terminated[:, 0].tolist() == [False, True, False, True]
    torch.testing.assert_close(rollout.returns[1, 0], torch.tensor(2.0))  # reward 2, nothing after


OBSERVATION_SPACES = {
    "box_2x3": S.Box(-1.0, 1.0, shape=(2, 3), dtype=np.float32),
    "discrete": S.Discrete(4, start=1),
    "multi_discrete": S.MultiDiscrete(np.array([[2, 3], [4, 2]])),
    "multi_binary": S.MultiBinary((2, 2)),
    "tuple": S.Tuple((S.Discrete(2), S.Box(0.0, 1.0, shape=(2,), dtype=np.float32))),
    "dict_nested": S.Dict({"b": S.MultiBinary(3), "a": S.Tuple((S.Discrete(3), S.MultiDiscrete([2, 2])))}),
}
EXPECTED_SIZES = {"box_2x3": 6, "discrete": 4, "multi_discrete": 11, "multi_binary": 4, "tuple": 4, "dict_nested": 10}


@pytest.mark.parametrize("name", sorted(OBSERVATION_SPACES))
def test_every_observation_space_flattens_through_the_adapter(name):
    space = OBSERVATION_SPACES[name]
    env = make_task("gym:Spaces-v0", 3, seed=1, observation_space=space)
    assert env.observation_size == flat_size(space) == EXPECTED_SIZES[name]
    obs, _ = env.reset(seed=1)
    assert obs.shape == (3, EXPECTED_SIZES[name]) and obs.dtype == torch.float32
    obs, *_ = env.step(torch.zeros(3, dtype=torch.long))
    assert obs.shape == (3, EXPECTED_SIZES[name]) and torch.isfinite(obs).all()


def test_flattening_values_one_hots_and_key_order():
    assert flatten_batch(S.Discrete(3, start=1), np.array([1, 3]), 2).tolist() == [[1, 0, 0], [0, 0, 1]]
    md = S.MultiDiscrete([2, 3])
    assert flatten_batch(md, np.array([[1, 2], [0, 0]]), 2).tolist() == [[0, 1, 0, 0, 1], [1, 0, 1, 0, 0]]
    box = S.Box(0.0, 9.0, shape=(2, 2))
    assert flatten_batch(box, np.arange(8).reshape(2, 2, 2), 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # Dict parts in the space's (sorted) key order: "a" (Discrete 2) before "z" (Box 1)
    space = S.Dict({"z": S.Box(0.0, 9.0, shape=(1,)), "a": S.Discrete(2)})
    batch = {"z": np.array([[7.0]]), "a": np.array([1])}
    assert flatten_batch(space, batch, 1).tolist() == [[0.0, 1.0, 7.0]]


ACTION_SPACES = {
    "discrete": (S.Discrete(3, start=-1), "discrete", (3,)),
    "multi_discrete": (S.MultiDiscrete([3, 2]), "multi_discrete", (3, 2)),
    "multi_binary": (S.MultiBinary(4), "multi_binary", (4,)),
    "box": (S.Box(-2.0, 1.0, shape=(2,), dtype=np.float32), "box", (2,)),
}


@pytest.mark.parametrize("name", sorted(ACTION_SPACES))
def test_every_action_space_reaches_the_env_inside_its_space(name):
    space, kind, sizes = ACTION_SPACES[name]
    env = make_task("gym:Spaces-v0", 2, seed=0, action_space=space)
    spec = env.env_spec
    assert (spec.action_kind, spec.action_sizes) == (kind, sizes)
    env.reset(seed=0)
    actions = {
        "discrete": torch.tensor([0, 2]),
        "multi_discrete": torch.tensor([[2, 1], [0, 0]]),
        "multi_binary": torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]]),
        "box": torch.tensor([[10.0, -10.0], [0.5, -0.5]]),  # out of bounds: clipped by the adapter
    }[name]
    env.step(actions)  # SpacesEnv raises if an action is outside its space
    received = [sub.unwrapped.last_action for sub in env.venv.envs]
    if name == "discrete":
        assert [int(a) for a in received] == [-1, 1]  # start offset applied
    if name == "box":
        assert received[0].tolist() == [1.0, -2.0] and received[1].tolist() == [0.5, -0.5]
        assert spec.action_low == (-2.0, -2.0) and spec.action_high == (1.0, 1.0)


def test_unsupported_spaces_raise_a_clear_error_naming_the_space():
    with pytest.raises(ConfigError, match="observation space .*Text"):
        make_task("gym:Spaces-v0", 1, observation_space=S.Text(5))
    with pytest.raises(ConfigError, match="action space .*Tuple"):
        make_task("gym:Spaces-v0", 1, action_space=S.Tuple((S.Discrete(2), S.Discrete(2))))
    with pytest.raises(ConfigError, match="NoSuchEnv"):
        make_task("gym:NoSuchEnv-v0", 1)
    with pytest.raises(ConfigError, match="vectorization"):
        make_task("gym:Counter-v0", 1, vectorization="threads")
    with pytest.raises(ConfigError, match="difficulty"):
        make_task("gym:Counter-v0", 1, difficulty="easy")


def test_a_next_step_autoreset_vector_env_is_refused():
    venv = gym.make_vec("Counter-v0", num_envs=1)  # gymnasium's default: NEXT_STEP
    with pytest.raises(ConfigError, match="SAME_STEP"):
        GymVectorTask(venv)


def test_async_vectorization_matches_sync():
    """One worker process per env (the module:EnvName form registers the env in each worker)."""
    env_id = "tests.envs.toy_gym_envs:Counter-v0"
    sync = make_gym_task(env_id, 2, seed=0, vectorization="sync", terminate_at=2)
    async_ = make_gym_task(env_id, 2, seed=0, vectorization="async", terminate_at=2)
    try:
        assert _episodes(sync, 6) == _episodes(async_, 6)
    finally:
        async_.close()


def test_success_is_read_from_the_final_info_and_evaluation_omits_it_otherwise():
    with_success = make_task("gym:Spaces-v0", 2, seed=0, report_success=True, episode_length=2)
    with_success.reset(seed=0)
    _, _, _, _, info = with_success.step(torch.tensor([2, 0]))
    assert not info["success"].any() and not with_success.reports_success
    _, _, term, _, info = with_success.step(torch.tensor([2, 0]))  # reward = action mean > 0 for env 0
    assert term.all() and info["success"].tolist() == [True, False] and with_success.reports_success

    dm = RolloutDataModule(env="gym:Counter-v0", num_envs=2, rollout_steps=4, seq_len=4, num_minibatches=1)
    dm.setup("fit")
    from lightning_memrl.agents import RecurrentPPO
    from lightning_memrl.controllers import GRU

    metrics = dm.evaluate(RecurrentPPO(GRU(8), env_spec=dm.env_spec), num_episodes=4)
    assert "success_rate" not in metrics and metrics["return_mean"] == 6.0  # 3-step episodes: 1 + 2 + 3
    dm.teardown("fit")


def test_a_resumed_collector_restarts_gym_episodes_and_keeps_its_counters():
    """Gymnasium envs have no portable state: after loading a checkpoint, episodes start afresh."""
    policy = _ValueIsObservation()
    first = RolloutCollector(make_task("gym:Counter-v0", 2, seed=0, terminate_at=5), 4, 4, 0, 0.9, 0.9)
    first.collect(policy)
    resumed = RolloutCollector(make_task("gym:Counter-v0", 2, seed=0, terminate_at=5), 4, 4, 0, 0.9, 0.9)
    resumed.load_state_dict(first.state_dict())
    rollout = resumed.collect(policy)
    assert resumed.env_steps == 16
    assert rollout.starts[0].all() and (rollout.obs[0, :, 0] == 0).all()
