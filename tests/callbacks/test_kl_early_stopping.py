"""KLEarlyStopping: pure decisions, a stopped iteration, adaptive learning rate, state."""

import lightning as L
import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.callbacks import KLEarlyStopping
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.errors import ConfigError


def test_should_stop_names_the_reason():
    cb = KLEarlyStopping(target_kl=0.02, stop_ratio=1.5)
    assert cb.should_stop(0.029) == (False, "")
    stop, reason = cb.should_stop(0.031)
    assert stop and "0.0300" in reason


def test_next_lr_scale_moves_toward_the_target_and_respects_bounds():
    cb = KLEarlyStopping(target_kl=0.02, adaptive=True, lr_factor=2.0, min_lr_scale=0.25, max_lr_scale=2.0)
    assert cb.next_lr_scale(0.05) == 0.5
    assert cb.next_lr_scale(0.005) == 2.0
    assert cb.next_lr_scale(0.02) == 1.0
    cb.lr_scale = 0.25
    assert cb.next_lr_scale(1.0) == 0.25


@pytest.mark.parametrize(
    "kwargs", [{"target_kl": 0.0}, {"stop_ratio": -1.0}, {"lr_factor": 1.0}, {"min_lr_scale": 2.0}]
)
def test_bad_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        KLEarlyStopping(**kwargs)


class _CountBatches(L.Callback):
    def __init__(self):
        self.per_epoch = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.per_epoch.append(0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.per_epoch[-1] += 1


def _fit(callbacks, epochs=2, lr=3e-4):
    L.seed_everything(0)
    dm = RolloutDataModule(
        env_kwargs={"horizon": 6}, num_envs=16, rollout_steps=16, seq_len=8, num_minibatches=4, update_epochs=4
    )
    model = RecurrentPPO(GRU(16), env_spec=dm.env_spec, lr=lr)
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, dm)
    return trainer


def test_a_tiny_target_stops_each_iteration_at_its_first_moved_minibatch():
    counter = _CountBatches()
    stopper = KLEarlyStopping(target_kl=1e-12, stop_ratio=1.0)
    _fit([stopper, counter], lr=1e-2)
    # minibatch 0 is scored before any update of the iteration (KL exactly 0); minibatch 1 is not
    assert counter.per_epoch == [2, 2]
    assert stopper.stopped_iterations == 2


class _ParametersAfterEachBatch(L.Callback):
    def __init__(self):
        self.after = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after.append([p.detach().clone() for p in pl_module.parameters()])


def test_the_minibatch_that_crosses_the_limit_is_not_applied():
    """Its KL is measured in its forward pass, before its update: past the limit, the update is dropped."""
    params = _ParametersAfterEachBatch()
    _fit([KLEarlyStopping(target_kl=1e-12, stop_ratio=1.0), params], epochs=1, lr=1e-2)
    first, crossing = params.after  # minibatch 0 (KL 0) applied, minibatch 1 (KL > 0) crossed the limit
    assert all(torch.equal(a, b) for a, b in zip(first, crossing, strict=True))


def test_a_huge_target_applies_every_minibatch():
    params = _ParametersAfterEachBatch()
    _fit([KLEarlyStopping(target_kl=1e9), params], epochs=1, lr=1e-2)
    assert len(params.after) == 16
    assert all(not torch.equal(a[0], b[0]) for a, b in zip(params.after, params.after[1:], strict=False))


def test_a_huge_target_never_stops():
    counter = _CountBatches()
    _fit([KLEarlyStopping(target_kl=1e9), counter])
    assert counter.per_epoch == [16, 16]  # 4 minibatches x 4 update epochs


def test_adaptive_scale_changes_the_learning_rate_and_is_saved():
    stopper = KLEarlyStopping(target_kl=1e-12, stop_ratio=1e12, adaptive=True, lr_factor=2.0)
    trainer = _fit([stopper], epochs=3, lr=1e-3)
    assert stopper.lr_scale == 0.125  # KL above 2 * target at each of 3 iterations
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.25)  # set at epoch start
    state = stopper.state_dict()
    fresh = KLEarlyStopping(target_kl=1e-12, stop_ratio=1e12, adaptive=True, lr_factor=2.0)
    fresh.load_state_dict(state)
    assert fresh.lr_scale == 0.125 and fresh.state_key == stopper.state_key
