"""cross_episode_recall: the pair taught in episode i is asked in episode i + lag of the same env, and nowhere else."""

import pytest
import torch

from lightning_memrl.envs import make_task


def _episodes(env, count, policy):
    """Play `count` episodes; per episode the teach observation, the query observation and the rewards."""
    out = []
    obs, _ = env.reset(seed=3)
    for _ in range(count):
        teach, rewards = obs.clone(), torch.zeros(env.num_envs)
        for t in range(env.horizon):
            if t == env.horizon - 1:
                query = obs.clone()
            obs, reward, term, trunc, info = env.step(policy(env, teach, query if t == env.horizon - 1 else None))
            rewards += reward
        assert term.all() and not trunc.any()
        out.append((teach, query, rewards))
    return out


def _remember(memory):
    """A policy with a perfect memory of this env's taught pairs (what an env-scoped episodic store could be)."""

    def policy(env, teach, query):
        k = env.key_size
        memory.append((teach[:, 2 : 2 + k], teach[:, 2 + k :].argmax(-1)))
        if query is None:
            return torch.zeros(env.num_envs, dtype=torch.long)
        answers = torch.zeros(env.num_envs, dtype=torch.long)
        for keys, values in memory:
            match = (keys == query[:, 2 : 2 + k]).all(-1)
            answers = torch.where(match, values, answers)
        return answers

    return policy


@pytest.mark.parametrize("lag", [1, 3])
def test_the_asked_pair_is_the_one_taught_lag_episodes_before(lag):
    env = make_task("cross_episode_recall", 5, seed=0, horizon=4, num_values=4, key_size=6, lag=lag)
    episodes = _episodes(env, 3 * lag + 2, lambda env, teach, query: env.oracle_action())
    k = env.key_size
    taught = [teach for teach, _, _ in episodes]
    for i, (teach, query, rewards) in enumerate(episodes):
        assert (teach[:, 0] == 1).all() and (teach[:, 1] == 0).all() and (query[:, 1] == 1).all()
        assert (query[:, 2 + k :] == 0).all()  # the query shows no value
        assert torch.equal(rewards, torch.ones(5))  # the oracle knows
        if i >= lag:
            assert torch.equal(query[:, 2 : 2 + k], taught[i - lag][:, 2 : 2 + k])
        else:  # asked for a pair never shown
            assert not any(torch.equal(query[:, 2 : 2 + k], t[:, 2 : 2 + k]) for t in taught)


def test_remembering_the_taught_pairs_succeeds_after_lag_episodes_and_a_random_guess_scores_chance():
    env = make_task("cross_episode_recall", 256, seed=0, horizon=3, num_values=4, lag=2)
    remembered = _episodes(env, 6, _remember([]))
    assert [float(r.mean()) for _, _, r in remembered[2:]] == [1.0] * 4
    assert all(float(r.mean()) < 0.45 for _, _, r in remembered[:2])  # not shown: a guess
    gen = torch.Generator().manual_seed(0)
    guesses = _episodes(env, 8, lambda env, *_: torch.randint(4, (env.num_envs,), generator=gen))
    assert abs(torch.stack([r for _, _, r in guesses]).mean() - 0.25) < 0.03


def test_state_dict_continues_the_envs_pairs():
    env = make_task("cross_episode_recall", 4, seed=0, horizon=3, lag=2)
    _episodes(env, 3, lambda env, *_: env.oracle_action())
    state = env.state_dict()
    copy = make_task("cross_episode_recall", 4, seed=9, horizon=3, lag=2)
    copy.load_state_dict(state)
    for _ in range(2 * env.horizon):
        a, b = env.step(env.oracle_action()), copy.step(copy.oracle_action())
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lag >= 1"):
        make_task("cross_episode_recall", 2, lag=0)
