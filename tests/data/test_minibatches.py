"""`num_minibatches` splits an iteration's sequences evenly whatever `num_envs`; a split that cannot be even is a
ConfigError naming the fix; the deprecated `minibatch_size` still works, with a warning naming its replacement."""

import pytest

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.errors import ConfigError


@pytest.mark.parametrize("num_envs", [4, 8, 12, 64])
def test_every_epoch_serves_num_minibatches_of_whole_sequences(num_envs):
    dm = RolloutDataModule(env_kwargs={"horizon": 5}, num_envs=num_envs, rollout_steps=16, seq_len=8, num_minibatches=4)
    dm.setup("fit")
    batches = list(dm.iterate(RecurrentPPO(GRU(8), env_spec=dm.env_spec)))
    assert len(batches) == 4 * dm.update_epochs == len(dm.train_dataloader())
    assert {b.actions.shape for b in batches} == {(num_envs * 2 // 4, 8)}  # sequences per minibatch, seq_len


def test_an_uneven_split_names_the_divisors_to_use():
    with pytest.raises(ConfigError, match=r"num_minibatches \(4\) must divide the 6 training sequences.*use 2 or 3"):
        RolloutDataModule(num_envs=6, rollout_steps=16, seq_len=16, num_minibatches=4)


def test_the_deprecated_minibatch_size_sets_num_minibatches_with_a_warning():
    with pytest.warns(FutureWarning, match=r"use data.num_minibatches 8, the same split"):
        dm = RolloutDataModule(num_envs=16, rollout_steps=16, seq_len=8, minibatch_size=32)
    assert dm.num_minibatches == 8 and dm.minibatch_size == 32
    with pytest.raises(ConfigError, match=r"minibatch_size \(24\) must be a multiple of data.seq_len"):
        RolloutDataModule(num_envs=16, rollout_steps=16, seq_len=16, minibatch_size=24)
