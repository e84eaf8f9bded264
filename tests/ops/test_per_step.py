import pytest
import torch

from lightning_memrl.ops.per_step import per_step


def test_per_step_gives_each_steps_views_of_every_tensor():
    x, y = torch.arange(12.0).reshape(3, 4), torch.arange(6).reshape(3, 2)
    steps = per_step(x, y)
    assert len(steps) == 3
    for t, (x_t, y_t) in enumerate(steps):
        assert torch.equal(x_t, x[t]) and torch.equal(y_t, y[t])


def test_per_step_views_write_through():
    """The scans write each step's results into the views: they must alias the full tensors."""
    out = torch.zeros(2, 3)
    for t, (row,) in enumerate(per_step(out)):
        torch.add(row, t + 1, out=row)
    assert torch.equal(out, torch.tensor([[1.0] * 3, [2.0] * 3]))


def test_per_step_refuses_tensors_of_different_lengths():
    with pytest.raises(ValueError):
        per_step(torch.zeros(3, 2), torch.zeros(4, 2))
