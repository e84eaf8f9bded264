"""`can_truncate = False` is a promise the collector relies on to skip its per-step truncation check."""

import pytest
import torch

from lightning_memrl.envs import get_task_spec, make_task, task_names


@pytest.mark.parametrize("name", task_names())
def test_tasks_that_declare_no_truncation_never_truncate(name):
    env = make_task(name, 64, seed=0, difficulty="easy")
    env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    horizon = get_task_spec(name).kwargs("easy")["horizon"]
    truncated_any = False
    for _ in range(3 * horizon):
        actions = torch.randint(env.num_actions, (env.num_envs,), generator=gen)
        _, _, _, truncated, _ = env.step(actions)
        truncated_any |= bool(truncated.any())
    if not env.can_truncate:
        assert not truncated_any
    elif name == "t_maze":  # random walkers run out of time
        assert truncated_any
