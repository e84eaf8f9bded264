"""TokenObservations: every step's observation is the one-hot of the shown item beside the phase's flags."""

import pytest
import torch

from lightning_memrl.envs.token_observations import TokenObservations, column_at


def _table():
    # 3 phases over 5 steps: item (3 tokens) + flag A at steps 0-1, nothing at step 2, flag B + item
    # (2 positions, in the last two columns) at steps 3-4; width 3 + 2 flags + 2 = 7
    flags = torch.zeros(3, 7)
    flags[0, 3] = flags[2, 4] = 1.0
    phase = torch.tensor([0, 0, 1, 2, 2])
    tape_column = torch.tensor([0, 1, 0, 2, 3])
    return TokenObservations(flags, [(0, 3), None, (5, 2)], tape_column, phase)


def test_each_step_shows_its_item_one_hot_beside_the_phase_flags():
    observations = _table()
    tape = torch.tensor([[2, 0, 1, 0], [1, -1, 0, 1]])  # env 1 shows nothing at step 1
    expected = {
        0: [[0, 0, 1, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0, 0]],
        1: [[1, 0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]],
        2: [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]],
        3: [[0, 0, 0, 0, 1, 0, 1], [0, 0, 0, 0, 1, 1, 0]],
        4: [[0, 0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 1, 0, 1]],
    }
    for step, rows in expected.items():
        obs = observations(tape, torch.full((2,), step))
        assert torch.equal(obs, torch.tensor(rows, dtype=torch.float32)), step
    # envs at different steps read their own rows
    assert torch.equal(observations(tape, torch.tensor([0, 3])), torch.tensor([expected[0][0], expected[3][1]]).float())


def test_an_item_one_hot_that_does_not_fit_is_rejected():
    with pytest.raises(ValueError, match="fit"):
        TokenObservations(
            torch.zeros(1, 4), [(2, 3)], torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="per phase"):
        TokenObservations(
            torch.zeros(2, 4), [(0, 2)], torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long)
        )


def test_column_at_reads_each_envs_column_of_the_step():
    table = torch.tensor([[10, 11, 12], [20, 21, 22]])
    schedule = torch.tensor([2, 0, 1])
    assert torch.equal(column_at(table, schedule, torch.tensor([0, 2])), torch.tensor([12, 21]))
