"""The task names of Pseudo-Mamba v2 (seed 004) build our tasks: `assoc_recall`, `distractor_nav`."""

import pytest
import torch

from lightning_memrl.data import RolloutDataModule
from lightning_memrl.envs.registry import TASK_ALIASES, get_task_spec, make_task, task_names


@pytest.mark.parametrize(("alias", "name"), sorted(TASK_ALIASES.items()))
def test_an_alias_builds_the_same_task(alias, name):
    assert alias not in task_names() and name in task_names()
    assert get_task_spec(alias) is get_task_spec(name)
    a, b = make_task(alias, 3, seed=1, difficulty="easy"), make_task(name, 3, seed=1, difficulty="easy")
    assert type(a) is type(b) and torch.equal(a.reset()[0], b.reset()[0])


def test_the_data_module_takes_an_alias():
    dm = RolloutDataModule(env="assoc_recall", num_envs=2, rollout_steps=8, seq_len=8, num_minibatches=1)
    assert dm.env_spec == RolloutDataModule(env="associative_recall", num_envs=2, rollout_steps=8, seq_len=8,
                                            num_minibatches=1).env_spec  # fmt: skip
