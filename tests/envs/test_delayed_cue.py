"""delayed_cue: reward and success proven by an oracle and a random policy; boundaries; registry."""

import pytest
import torch

from lightning_memrl.envs import DelayedCue, get_task_spec, make_task, task_names
from lightning_memrl.errors import ConfigError


def _play(env, policy, steps):
    env.reset(seed=3)
    successes = episodes = 0.0
    total_reward = 0.0
    for _ in range(steps):
        _, reward, term, trunc, info = env.step(policy(env))
        done = term | trunc
        episodes += float(done.sum())
        successes += float(info["success"].sum())
        total_reward += float(reward.sum())
    return successes / episodes, total_reward / episodes


@pytest.mark.parametrize("difficulty", ["easy", "medium"])
def test_oracle_always_succeeds(difficulty):
    env = make_task("delayed_cue", 64, seed=0, difficulty=difficulty)
    success, ret = _play(env, lambda e: e.oracle_action(), 3 * env.horizon)
    assert success == 1.0
    assert ret == 1.0


def test_random_policy_scores_chance():
    env = make_task("delayed_cue", 2048, seed=0, horizon=5, num_cues=4)
    gen = torch.Generator().manual_seed(0)
    success, _ = _play(env, lambda e: torch.randint(4, (e.num_envs,), generator=gen), 50)
    chance = get_task_spec("delayed_cue").chance_level(horizon=5, num_cues=4)
    assert chance == 0.25
    assert abs(success - chance) < 0.02


def test_episode_structure_and_autoreset():
    env = DelayedCue(num_envs=3, horizon=4, num_cues=3, seed=1)
    obs, _ = env.reset()
    cue = obs[:, :3].argmax(-1)
    assert torch.equal(obs[:, :3].sum(-1), torch.ones(3))  # cue shown at step 0
    assert torch.equal(obs[:, -1], torch.zeros(3))
    for t in range(1, 4):
        obs, reward, term, trunc, info = env.step(cue)
        if t < 3:
            assert torch.equal(obs[:, :3], torch.zeros(3, 3))  # blank delay
            assert bool(obs[0, -1]) == (t == 3)
            assert not term.any() and not trunc.any()
    assert torch.equal(obs[:, -1], torch.ones(3))  # query flag at the last step (horizon - 1)
    obs, reward, term, trunc, info = env.step(cue)
    assert term.all() and not trunc.any()  # terminated, never truncated
    assert torch.equal(reward, torch.ones(3)) and info["success"].all()
    assert torch.equal(obs[:, :3].sum(-1), torch.ones(3))  # autoreset: the next episode's cue
    assert torch.equal(info["final_observation"][:, :3], torch.zeros(3, 3))


def test_wrong_answer_and_non_query_steps_give_nothing():
    env = DelayedCue(num_envs=4, horizon=3, num_cues=2, seed=0)
    env.reset()
    wrong = 1 - env.oracle_action()
    rewards = [env.step(wrong)[1] for _ in range(3)]
    assert all(float(r.sum()) == 0.0 for r in rewards)


def test_seeds_reproduce_and_differ():
    def cues(seed):
        env = DelayedCue(num_envs=16, horizon=2, num_cues=8)
        env.reset(seed=seed)
        out = [env.oracle_action()]
        for _ in range(6):
            env.step(env.oracle_action())
            out.append(env.oracle_action())
        return torch.stack(out)

    assert torch.equal(cues(1), cues(1))
    assert not torch.equal(cues(1), cues(2))


def test_state_dict_round_trip_continues_identically():
    env = DelayedCue(num_envs=8, horizon=3, num_cues=5, seed=0)
    env.reset()
    env.step(env.oracle_action())
    saved = env.state_dict()
    first = [env.step(env.oracle_action())[0] for _ in range(5)]
    other = DelayedCue(num_envs=8, horizon=3, num_cues=5, seed=99)
    other.reset()
    other.load_state_dict(saved)
    second = [other.step(other.oracle_action())[0] for _ in range(5)]
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_difficulty_sets_horizon_and_cues():
    spec = get_task_spec("delayed_cue")
    for difficulty, expected in spec.difficulties.items():
        env = make_task("delayed_cue", 2, difficulty=difficulty)
        assert env.horizon == expected["horizon"]
        assert env.num_cues == expected["num_cues"]
        env.reset()
        lengths = 0
        while True:
            _, _, term, _, _ = env.step(env.oracle_action())
            lengths += 1
            if term.all():
                break
        assert lengths == expected["horizon"]


def test_explicit_kwargs_override_difficulty():
    env = make_task("delayed_cue", 2, difficulty="medium", horizon=30)
    assert (env.horizon, env.num_cues) == (30, 8)


def test_unknown_task_lists_known_ones():
    with pytest.raises(ConfigError, match="delayed_cue"):
        make_task("delayed_queue", 2)
    assert "delayed_cue" in task_names()


def test_unknown_difficulty_and_bad_kwargs_are_config_errors():
    with pytest.raises(ConfigError, match="easy"):
        make_task("delayed_cue", 2, difficulty="impossible")
    with pytest.raises(ConfigError, match="horizon"):
        make_task("delayed_cue", 2, horizon=1)
    with pytest.raises(ConfigError, match="bad arguments"):
        make_task("delayed_cue", 2, num_cue=3)
