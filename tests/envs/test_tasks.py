"""The new tasks' shared behaviour: chance levels proven exactly on short configurations, and episode
boundaries (autoreset, terminated vs truncated, seeds, no leaks, checkpoints) alike in every task.

Every task at every difficulty is covered by test_task_difficulties.py.
"""

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.envs import get_task_spec, make_task, sampling, task_names
from lightning_memrl.errors import ConfigError

NEW_TASKS = [
    "associative_recall",
    "copy_memory",
    "distractor_navigation",
    "multi_cue_delay",
    "n_back",
    "pattern_binding",
    "permuted_copy",
    "t_maze",
]

# small configurations where a random policy succeeds often, with its exact success rate and its
# expected return per episode (the fraction of answers right, 1 / vocab_size, for the sequence tasks)
SHORT = {
    "associative_recall": ({"horizon": 6, "vocab_size": 4, "num_pairs": 2}, 0.25),
    "copy_memory": ({"horizon": 5, "vocab_size": 2, "seq_len": 2}, 0.5),
    "distractor_navigation": ({"horizon": 3, "track_len": 5, "num_distractors": 1}, 0.2),
    "multi_cue_delay": ({"horizon": 6, "vocab_size": 2, "num_cues": 2, "presentation_len": 3}, 0.5),
    "n_back": ({"horizon": 4, "vocab_size": 2, "n": 2}, 0.5),
    "pattern_binding": ({"horizon": 9, "vocab_size": 2, "pattern_len": 2, "num_patterns": 1}, 0.5),
    "permuted_copy": ({"horizon": 5, "vocab_size": 2, "seq_len": 2}, 0.5),
    "t_maze": ({"horizon": 3, "time_limit": 8}, None),  # return == success for the T-maze
    "cross_episode_recall": ({"horizon": 3, "num_values": 2, "key_size": 2, "lag": 1}, 0.5),
}


def _longest_episode(env) -> int:
    return getattr(env, "time_limit", env.horizon)


def _random_policy(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return lambda env: torch.randint(env.num_actions, (env.num_envs,), generator=gen)


def _oracle(env):
    return env.oracle_action()


def _wrong(env):
    """Always the wrong answer, with the oracle's timing (the T-maze turns the other way)."""
    right = env.oracle_action()
    if hasattr(env, "junction"):
        return torch.where(right == 0, 0, 3 - right)
    return (right + 1) % env.num_actions


def _play(env, policy, steps: int, seed: int = 3) -> dict:
    """Step `steps` times from a reset; per-episode statistics."""
    env.reset(seed=seed)
    stats = {"episodes": 0, "successes": 0, "return": 0.0, "terminated": 0, "truncated": 0}
    running = torch.zeros(env.num_envs)
    returns = []
    for _ in range(steps):
        _, reward, term, trunc, info = env.step(policy(env))
        done = term | trunc
        running += reward
        stats["episodes"] += int(done.sum())
        stats["successes"] += int(info["success"].sum())
        stats["terminated"] += int(term.sum())
        stats["truncated"] += int(trunc.sum())
        returns.extend(running[done].tolist())
        running[done] = 0.0
    stats["returns"] = returns
    return stats


def _close_to(rate: float, expected: float, n: int) -> bool:
    """Within four standard errors of a binomial mean (plus a count of slack for tiny rates)."""
    return abs(rate - expected) <= 4 * math.sqrt(expected * (1 - expected) / n) + 1.0 / n


@pytest.mark.parametrize("task", NEW_TASKS)
def test_random_policy_matches_chance_level_exactly_where_it_is_large(task):
    kwargs, expected_return = SHORT[task]
    env = make_task(task, 4096, seed=0, **kwargs)
    stats = _play(env, _random_policy(1), 3 * _longest_episode(env))
    chance = get_task_spec(task).chance_level(**kwargs)
    assert chance > 0.05
    n = stats["episodes"]
    assert _close_to(stats["successes"] / n, chance, n)
    mean_return = sum(stats["returns"]) / len(stats["returns"])
    expected_return = chance if expected_return is None else expected_return
    assert abs(mean_return - expected_return) < 4 * 0.5 / math.sqrt(n)


def test_t_maze_chance_level_counts_the_walk_and_the_turn():
    spec = get_task_spec("t_maze")
    # horizon 2: one forward move needed; with time limit 2 the walk must be the first step and the turn
    # the second: 1/3 * 1/3
    assert spec.chance_level(horizon=2, time_limit=2) == pytest.approx(1 / 9)
    assert spec.chance_level(horizon=3, time_limit=3) == pytest.approx(1 / 27)
    # an unlimited walk always reaches the junction, and then turns right or wrong with equal chance
    assert spec.chance_level(horizon=3, time_limit=400) == pytest.approx(0.5)


@pytest.mark.parametrize("task", NEW_TASKS)
def test_seeds_reproduce_and_differ(task):
    def trajectory(seed):
        env = make_task(task, 8, seed=seed, difficulty="easy")
        out = [env.reset(seed=seed)[0]]
        policy = _random_policy(5)
        for _ in range(env.horizon + 5):
            obs, reward, term, trunc, _ = env.step(policy(env))
            out += [obs, reward, term, trunc]
        return out

    first, again, other = trajectory(1), trajectory(1), trajectory(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("task", NEW_TASKS)
def test_no_information_leaks_into_the_next_episode(task):
    """Two envs with one seed play episode 1 differently (right vs wrong); episode 2 is the same for both."""
    right = make_task(task, 8, seed=4, difficulty="easy")
    wrong = make_task(task, 8, seed=4, difficulty="easy")
    obs_right, _ = right.reset()
    obs_wrong, _ = wrong.reset()
    assert torch.equal(obs_right, obs_wrong)
    return_wrong = torch.zeros(8)
    for _ in range(right.horizon):
        obs_right, _, done_right, _, info_right = right.step(right.oracle_action())
        obs_wrong, reward, done_wrong, _, info_wrong = wrong.step(_wrong(wrong))
        return_wrong += reward
    assert done_right.all() and done_wrong.all()
    assert info_right["success"].all() and not info_wrong["success"].any()
    assert float(return_wrong.max()) < 1.0
    # the first observation of episode 2, and all of episode 2, do not remember episode 1
    assert torch.equal(obs_right, obs_wrong)
    return_right = return_wrong.zero_().clone()
    for _ in range(right.horizon):
        obs_right, reward_right, _, _, info_right = right.step(right.oracle_action())
        obs_wrong, reward_wrong, _, _, info_wrong = wrong.step(wrong.oracle_action())
        assert torch.equal(obs_right, obs_wrong) and torch.equal(reward_right, reward_wrong)
        return_right += reward_right
    assert info_right["success"].all() and info_wrong["success"].all()  # counters were reset
    assert torch.allclose(return_right, torch.ones(8), atol=1e-5)


@pytest.mark.parametrize("task", NEW_TASKS)
def test_autoreset_returns_the_next_episodes_first_observation(task):
    env = make_task(task, 6, seed=2, difficulty="easy")
    env.reset(seed=7)
    for _ in range(env.horizon - 1):
        env.step(env.oracle_action())
    before_last = env.state_dict()
    actions = env.oracle_action()
    obs, _, term, trunc, info = env.step(actions)
    assert (term | trunc).all()
    assert int(env.t.max()) == 0  # every env restarted within the step
    assert torch.equal(obs, env._observe())
    # the final observation is the end of the old episode, seen before the reset
    probe = make_task(task, 6, seed=2, difficulty="easy")
    probe.load_state_dict(before_last)
    probe._advance(actions)
    assert torch.equal(info["final_observation"], probe._observe())
    assert not torch.equal(info["final_observation"], obs)


@pytest.mark.parametrize("task", NEW_TASKS)
def test_state_dict_round_trip_continues_identically(task):
    env = make_task(task, 8, seed=0, difficulty="easy")
    env.reset()
    policy = _random_policy(2)
    for _ in range(env.horizon // 2):
        env.step(policy(env))
    saved = env.state_dict()
    actions = [policy(env) for _ in range(env.horizon + 3)]  # crosses an episode boundary
    first = [env.step(a) for a in actions]
    other = make_task(task, 8, seed=99, difficulty="easy")
    other.reset()
    other.load_state_dict(saved)
    second = [other.step(a) for a in actions]
    for (obs_a, rew_a, term_a, trunc_a, _), (obs_b, rew_b, term_b, trunc_b, _) in zip(first, second, strict=True):
        assert torch.equal(obs_a, obs_b) and torch.equal(rew_a, rew_b)
        assert torch.equal(term_a, term_b) and torch.equal(trunc_a, trunc_b)


@pytest.mark.parametrize("task", NEW_TASKS)
def test_accelerator_path_redraws_every_row_and_keeps_running_envs(task, monkeypatch):
    """The sync-free path (all rows drawn, old rows kept by `where`) gives the same guarantees on CPU."""
    monkeypatch.setattr(sampling, "draws_every_row", lambda device: True)
    env = make_task(task, 16, seed=0, **SHORT[task][0])
    stats = _play(env, _oracle, 3 * env.horizon)
    assert stats["successes"] == stats["episodes"] == 3 * 16
    stats = _play(env, _random_policy(3), 40 * _longest_episode(env))
    chance = get_task_spec(task).chance_level(**SHORT[task][0])
    assert _close_to(stats["successes"] / stats["episodes"], chance, stats["episodes"])


@settings(max_examples=30, deadline=None)
@given(task=st.sampled_from(NEW_TASKS), seed=st.integers(0, 2**16), neighbours_seed=st.integers(0, 2**16))
def test_an_env_does_not_depend_on_its_neighbours_actions(task, seed, neighbours_seed):
    """Env 0 plays the oracle; whatever the other envs do, env 0 sees the same task and always succeeds."""
    kwargs = SHORT[task][0]
    alone = make_task(task, 4, seed=seed, **kwargs)
    crowd = make_task(task, 4, seed=seed, **kwargs)
    alone.reset()
    crowd.reset()
    gen = torch.Generator().manual_seed(neighbours_seed)
    for _ in range(3 * alone.horizon):
        noise = torch.randint(crowd.num_actions, (4,), generator=gen)
        noisy = torch.cat([crowd.oracle_action()[:1], noise[1:]])
        obs_a, rew_a, term_a, trunc_a, info_a = alone.step(alone.oracle_action())
        obs_c, rew_c, term_c, trunc_c, info_c = crowd.step(noisy)
        assert torch.equal(obs_a[0], obs_c[0]) and rew_a[0] == rew_c[0]
        assert term_a[0] == term_c[0] and trunc_a[0] == trunc_c[0]
        assert bool(info_c["success"][0]) == bool(term_c[0])


@pytest.mark.gpu
@pytest.mark.parametrize("task", task_names())
def test_tasks_run_on_cuda_like_on_cpu(task):
    """On CUDA (sync-free redraws): the oracle always succeeds and a random policy scores chance."""
    kwargs = SHORT.get(task, ({"horizon": 5, "num_cues": 4}, None))[0]
    env = make_task(task, 4096, device="cuda", seed=0, **kwargs)
    env.reset(seed=1)
    successes = episodes = 0
    for _ in range(3 * env.horizon):
        _, _, term, trunc, info = env.step(env.oracle_action())
        episodes += int((term | trunc).sum())
        successes += int(info["success"].sum())
    assert successes == episodes == 3 * 4096
    gen = torch.Generator(device="cuda").manual_seed(0)
    env.reset(seed=2)
    successes = episodes = 0
    for _ in range(5 * _longest_episode(env)):
        actions = torch.randint(env.num_actions, (4096,), device="cuda", generator=gen)
        _, _, term, trunc, info = env.step(actions)
        episodes += int((term | trunc).sum())
        successes += int(info["success"].sum())
    chance = get_task_spec(task).chance_level(**kwargs)
    assert _close_to(successes / episodes, chance, episodes)


FIXED_LENGTH_TASKS = [task for task in task_names() if get_task_spec(task).cls.fixed_length]


def test_fixed_length_tasks_are_the_tasks_that_never_truncate_but_the_t_maze():
    assert sorted(FIXED_LENGTH_TASKS) == sorted(set(task_names()) - {"t_maze"})


@pytest.mark.parametrize("task", FIXED_LENGTH_TASKS)
def test_fixed_length_tasks_reset_only_at_the_steps_where_episodes_end(task, monkeypatch):
    """All envs start together, so `step` knows on the host when episodes end and skips the reset work
    (on an accelerator: redrawing content for every row) at every other step."""
    monkeypatch.setattr(sampling, "draws_every_row", lambda device: True)
    env = make_task(task, 16, seed=0, difficulty="easy")
    calls = []
    reset_envs = env._reset_envs
    monkeypatch.setattr(env, "_reset_envs", lambda mask: calls.append(mask.clone()) or reset_envs(mask))
    env.reset(seed=1)
    for step in range(1, 2 * env.horizon + 1):
        obs, _, term, _, info = env.step(env.oracle_action())
        ends = step % env.horizon == 0
        assert bool(term.all()) == ends and bool(term.any()) == ends
        assert len(calls) == 1 + step // env.horizon  # reset() itself, then once per episode end
        if ends:
            assert info["success"].all() and not torch.equal(info["final_observation"], obs)
        else:
            assert info["final_observation"] is obs and not info["success"].any()


@pytest.mark.parametrize("task", FIXED_LENGTH_TASKS)
def test_envs_out_of_step_after_loading_a_checkpoint_end_each_at_its_own_step(task):
    """A checkpoint whose envs are at different steps (not one `step` makes, but one a user can load)
    takes the general path: each env still ends exactly at its horizon and the oracle still succeeds."""
    kwargs = SHORT.get(task, ({"horizon": 5, "num_cues": 4}, None))[0]
    fresh = make_task(task, 8, seed=0, **kwargs)
    fresh.reset(seed=1)
    ahead = make_task(task, 8, seed=0, **kwargs)
    ahead.reset(seed=2)
    ahead.step(ahead.oracle_action())
    mixed = fresh.state_dict()
    odd = torch.arange(8) % 2 == 1
    for name, value in mixed["tensors"].items():
        other = ahead.state_dict()["tensors"][name]
        mixed["tensors"][name] = torch.where(odd.view(-1, *[1] * (value.dim() - 1)), other, value)
    env = make_task(task, 8, seed=0, **kwargs)
    env.load_state_dict(mixed)
    assert env._clock is None
    first_end = torch.full((8,), -1)
    for step in range(1, 2 * env.horizon + 1):
        _, _, term, trunc, info = env.step(env.oracle_action())
        assert not trunc.any() and torch.equal(info["success"], term)
        first_end = torch.where(term & (first_end < 0), step, first_end)
    assert torch.equal(first_end, torch.where(odd, env.horizon - 1, env.horizon))
    env.reset()  # a reset puts every env back in step
    assert env._clock == 0


def test_a_rule_knob_that_is_not_a_knob_of_the_task_is_refused_by_name():
    spec = get_task_spec("n_back")
    with pytest.raises(ConfigError, match=r"rule_knobs \['m'\] are not knobs of the task"):
        dataclasses.replace(spec, rule_knobs=("m",))
    assert dataclasses.replace(spec, rule_knobs=("n",)).rule_knobs == ("n",)
