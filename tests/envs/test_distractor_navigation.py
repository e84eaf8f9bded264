"""distractor_navigation: several targets, one cued; local colour view; success on the cued one."""

import pytest
import torch

from lightning_memrl.envs import DistractorNavigation, make_task
from lightning_memrl.errors import ConfigError


def test_targets_sit_on_distinct_cells_and_exactly_one_is_cued():
    env = DistractorNavigation(num_envs=512, horizon=30, track_len=21, num_distractors=5, seed=0)
    env.reset()
    assert (env.targets.sort(1).values.diff(dim=1) > 0).all()  # six targets on six different cells
    assert torch.equal(env.goal, env.targets.gather(1, env.cue.unsqueeze(1)).squeeze(1))
    # the cued colour is uniform over the six colours
    assert torch.bincount(env.cue, minlength=6).min() > 50


def test_cue_only_at_the_start_and_colours_seen_only_on_their_cell():
    env = DistractorNavigation(num_envs=1, horizon=12, track_len=7, num_distractors=2, seed=4)
    obs, _ = env.reset()
    cue = obs[0, :3]
    assert cue.sum() == 1 and int(cue.argmax()) == int(env.cue[0])
    assert obs[0, -1] == pytest.approx(0.5)  # the middle of 7 cells
    for _ in range(3):  # walk to the left end, then sweep right, checking what is seen on each cell
        obs, *_ = env.step(torch.tensor([0]))
    for cell in range(7):
        assert not obs[0, :3].any()
        here = obs[0, 3:6]
        colours = (env.targets[0] == cell).nonzero().squeeze(1).tolist()
        assert here.nonzero().squeeze(1).tolist() == colours
        assert obs[0, -1] == pytest.approx(cell / 6)
        if cell < 6:
            obs, *_ = env.step(torch.tensor([2]))


def test_success_only_on_the_cued_target_at_the_end():
    env = DistractorNavigation(num_envs=256, horizon=25, track_len=21, num_distractors=4, seed=1)
    env.reset()
    # walk to a distractor instead: right timing, wrong place
    decoy = env.targets.gather(1, ((env.cue + 1) % 5).unsqueeze(1)).squeeze(1)
    for _ in range(25):
        _, reward, term, _, info = env.step(torch.sign(decoy - env.position) + 1)
    assert term.all() and not info["success"].any() and not reward.any()


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="track_len"):
        make_task("distractor_navigation", 2, track_len=3, num_distractors=5)
    with pytest.raises(ConfigError, match="reach every"):
        make_task("distractor_navigation", 2, horizon=5, track_len=41)


def _sweep(env: DistractorNavigation, steps: int) -> torch.Tensor:
    """The best search: left to the end, then right over the whole track, stopping on the cued colour."""
    obs, _ = env.reset(seed=3)
    k = env.num_targets
    cue = obs[:, :k].argmax(1)
    found = torch.zeros(env.num_envs, dtype=torch.bool)
    at_left_end = torch.zeros(env.num_envs, dtype=torch.bool)
    success = torch.zeros(env.num_envs, dtype=torch.bool)
    for _ in range(steps):
        here = obs[:, k : 2 * k]
        found |= here.gather(1, cue[:, None]).squeeze(1) > 0
        at_left_end |= obs[:, -1] == 0
        action = torch.where(found, 1, torch.where(at_left_end, 2, 0))
        obs, _, terminated, _, info = env.step(action)
        success |= info["success"] & terminated
    return success


@pytest.mark.parametrize("track_len", [7, 21, 41])
def test_min_horizon_is_the_shortest_episode_a_search_always_solves(track_len):
    shortest = DistractorNavigation.min_horizon(track_len=track_len)
    make = lambda horizon: DistractorNavigation(num_envs=512, horizon=horizon, track_len=track_len, num_distractors=2)
    assert _sweep(make(shortest), shortest).all()
    assert not _sweep(make(shortest - 1), shortest - 1).all()  # the target at the far end is missed
