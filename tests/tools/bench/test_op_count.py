"""AtenOpCounter and `count_task_ops`: the CPU proxy for GPU kernel launches and device syncs."""

import pytest
import torch

from lightning_memrl.envs import task_names
from lightning_memrl.tools.bench.envs import count_task_ops
from lightning_memrl.tools.bench.op_count import AtenOpCounter


def test_counter_counts_ops_but_not_views_and_host_reads_apart():
    x = torch.ones(4, 3)
    with AtenOpCounter() as counter:
        y = x.unsqueeze(0)[0, 1:]  # views only
    assert counter.ops == 0
    with AtenOpCounter() as counter:
        y = (x + 1).sum(1)
        bool(y.any())
    assert counter.host_reads == 1
    assert counter.ops == 4  # add, sum, any, and the host read
    assert counter.by_op["aten.add"] == 1


# With 65,536 envs a GPU step is bound by its kernel launches: these budgets keep every task's step
# small (measured: 10-17 ops for the fixed-length tasks, 31 for the T-maze) and free of device syncs.
@pytest.mark.parametrize("difficulty", ["easy", "hard"])
@pytest.mark.parametrize("task", task_names())
def test_every_task_steps_in_few_ops_and_never_reads_a_value_on_the_host(task, difficulty):
    budget = 32 if task == "t_maze" else 18
    counts = count_task_ops(task, num_envs=16, difficulty=difficulty, warmup=3, steps=None)
    assert counts["host_reads_per_step"] == 0
    assert counts["aten_ops_per_step"] <= budget
