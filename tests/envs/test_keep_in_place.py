"""`VectorTask.keep_in_place()`: what a CUDA graph replaying `step` needs, with unchanged dynamics.

While on, every tensor of a task stays at its address through `step` and `reset` (a graph replays on
fixed memory), and the steps are exactly those of the same task stepped without its host-side clock.
"""

import pytest
import torch

from lightning_memrl.envs import make_task, task_names
from tests.envs.test_tasks import SHORT

CONFIGS = {"delayed_cue": {"horizon": 5}, **{name: kwargs for name, (kwargs, _) in SHORT.items()}}


def test_every_task_has_a_short_configuration_here():
    assert set(CONFIGS) == set(task_names())


def _tensors(env) -> dict[str, torch.Tensor]:
    return {name: value for name, value in vars(env).items() if isinstance(value, torch.Tensor)}


@pytest.mark.parametrize("every_row", [False, True], ids=["cpu_draws", "accelerator_draws"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_in_place_steps_keep_every_tensor_and_equal_unclocked_steps(name, every_row, monkeypatch):
    from lightning_memrl.envs import sampling

    monkeypatch.setattr(sampling, "draws_every_row", lambda device: every_row)  # a CUDA device draws every row
    kwargs = CONFIGS[name]
    in_place, plain = (make_task(name, 6, seed=2, **kwargs) for _ in range(2))
    in_place.keep_in_place()
    in_place.reset(seed=4)
    plain.reset(seed=4)
    plain._clock = None  # the reference: the general step, every step (what the in-place task runs)
    tensors = _tensors(in_place)
    actions = torch.Generator().manual_seed(0)
    for step in range(4 * in_place.horizon):
        if step == 2 * in_place.horizon:  # a reset in the middle stays in place too
            for env in (in_place, plain):
                first = env.reset(seed=9)[0]
            plain._clock = None
        action = torch.randint(in_place.num_actions, (6,), generator=actions)
        ours, theirs = in_place.step(action), plain.step(action)
        for a, b in zip(ours[:4], theirs[:4], strict=True):
            assert torch.equal(a, b)
        for key in ("final_observation", "success"):
            assert torch.equal(ours[4][key], theirs[4][key])
        assert all(tensor is getattr(in_place, attr) for attr, tensor in tensors.items()), name
    assert first.shape[0] == 6


def test_turning_it_off_finds_the_clock_again():
    env = make_task("copy_memory", 4, seed=0, **CONFIGS["copy_memory"])
    env.reset()
    env.keep_in_place()
    assert env._clock is None
    env.step(torch.zeros(4, dtype=torch.long))
    env.step(torch.zeros(4, dtype=torch.long))
    env.keep_in_place(False)
    assert env._clock == 2


def test_loading_a_checkpoint_keeps_the_tensors_in_place():
    env = make_task("t_maze", 4, seed=0, **CONFIGS["t_maze"])
    env.keep_in_place()
    env.reset()
    saved = env.state_dict()
    tensors = _tensors(env)
    env.step(torch.zeros(4, dtype=torch.long))
    env.load_state_dict(saved)
    assert all(tensor is getattr(env, attr) for attr, tensor in tensors.items())
    assert env._clock is None
