"""HorizonCurriculum: pure decisions, a rising horizon on tiny delayed_cue, and resume."""

import json

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.callbacks.horizon_curriculum import HorizonCurriculum
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.errors import ConfigError


def _resolved(max_horizon=200, **kwargs):
    return HorizonCurriculum(max_horizon=max_horizon, **kwargs)


def test_next_horizon_multiplies_rounds_and_caps():
    cb = _resolved(factor=1.5, max_horizon=200)
    horizons = [50]
    while horizons[-1] < 200:
        horizons.append(cb.next_horizon(horizons[-1]))
    assert horizons == [50, 75, 112, 168, 200]
    assert _resolved(factor=1.01, max_horizon=10).next_horizon(3) == 4  # always at least +1


def test_should_raise_names_the_reason():
    cb = _resolved(threshold=0.9, factor=1.5, max_horizon=200)
    assert cb.should_raise(0.95, 50) == (True, "success 0.950 >= threshold 0.9: horizon 50 -> 75")
    act, reason = cb.should_raise(0.89, 50)
    assert not act and "< threshold 0.9" in reason
    act, reason = cb.should_raise(1.0, 200)
    assert not act and "max_horizon 200" in reason
    assert not cb.should_raise(float("nan"), 50)[0]


def test_should_stop_only_at_max_horizon():
    cb = _resolved(max_horizon=200, stop_at_success=0.95)
    assert not cb.should_stop(1.0, 168)[0]
    assert not cb.should_stop(0.9, 200)[0]
    assert cb.should_stop(0.95, 200)[0]
    assert not _resolved(max_horizon=200).should_stop(1.0, 200)[0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"factor": 1.0},
        {"max_horizon": 0},
        {"start_horizon": 300, "max_horizon": 200},
        {"every_n_iterations": 0},
        {"eval_episodes": 0},
        {"stop_at_success": 2.0},
    ],
)
def test_bad_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        HorizonCurriculum(**kwargs)


class _AlwaysRight(L.Callback):
    """Makes evaluation report success 1.0 so the schedule is deterministic and fast."""

    def setup(self, trainer, pl_module, stage):
        dm = trainer.datamodule
        dm.evaluate = lambda policy, num_episodes=None: {"success_rate": torch.tensor(1.0)}


class _Horizons(L.Callback):
    """The horizon of the env each iteration collected from."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.seen.append(trainer.datamodule.collector.env.horizon)


def _fit(root, epochs, curriculum, ckpt_path=None, extra=()):
    L.seed_everything(0)
    dm = RolloutDataModule(
        env_kwargs={"horizon": 20, "num_cues": 3},
        num_envs=16,
        rollout_steps=16,
        seq_len=16,
        num_minibatches=2,
        update_epochs=1,
        eval_envs=16,
        eval_episodes=16,
    )
    model = RecurrentPPO(GRU(16), env_spec=dm.env_spec)
    horizons = _Horizons()
    trainer = L.Trainer(
        max_epochs=epochs,
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[curriculum, horizons, *extra, ModelCheckpoint(dirpath=root, save_last=True, save_top_k=0)],
    )
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    return trainer, dm, horizons.seen


def test_horizon_rises_on_real_evaluations_and_is_logged(tmp_path):
    # threshold just above 0: any right answer in the greedy evaluation raises the horizon
    cb = HorizonCurriculum(threshold=1e-6, factor=2.0, start_horizon=5, every_n_iterations=1)
    trainer, dm, seen = _fit(tmp_path, 3, cb)
    assert cb.max_horizon == 20  # the configured task horizon
    assert len(cb.history) == 3 and all(0 <= h["success"] <= 1 for h in cb.history)
    # every iteration collects at the horizon the previous evaluation chose
    expected = [5]
    for record in cb.history[:-1]:
        expected.append(record["new_horizon"] or expected[-1])
    assert seen == expected
    assert cb.schedule, "greedy answers are right at chance 1/3 on some of 16 episodes: the horizon must rise"
    assert dm.env_kwargs["horizon"] == cb.horizon and dm.eval_env.horizon == cb.horizon
    assert trainer.callback_metrics["curriculum/horizon"] == float(seen[-1])
    assert "curriculum/success" in trainer.callback_metrics


def test_schedule_is_recorded_and_restored_on_resume(tmp_path):
    def curriculum():
        return HorizonCurriculum(threshold=0.9, factor=1.5, max_horizon=20, start_horizon=4, every_n_iterations=2)

    part = curriculum()
    _, dm, seen = _fit(tmp_path, 4, part, extra=[_AlwaysRight()])
    assert seen == [4, 4, 6, 6]
    assert [(it, h) for it, _, h in part.schedule] == [(2, 6), (4, 9)]
    assert part.history[0]["env_steps"] == 2 * 16 * 16
    assert dm.env_kwargs["horizon"] == 9

    resumed = curriculum()
    _, dm, seen = _fit(tmp_path, 8, resumed, ckpt_path=str(tmp_path / "last.ckpt"), extra=[_AlwaysRight()])
    assert seen == [9, 9, 14, 14]  # start_horizon is ignored when resuming
    assert [h for _, _, h in resumed.schedule] == [6, 9, 14, 20]
    assert resumed.horizon == 20 and dm.env_kwargs["horizon"] == 20
    summary = json.loads((tmp_path / "curriculum.json").read_text())
    assert summary["horizon"] == 20 and summary["history"] == resumed.history


def test_validate_from_a_curriculum_checkpoint_evaluates_the_configured_task(tmp_path):
    """The checkpoint holds the curriculum's horizon (9); validating it must use the config's (20)."""
    curriculum = HorizonCurriculum(threshold=0.9, factor=1.5, start_horizon=4, every_n_iterations=2)
    _, dm, _ = _fit(tmp_path, 4, curriculum, extra=[_AlwaysRight()])
    assert dm.env_kwargs["horizon"] == 9
    fresh = RolloutDataModule(
        env_kwargs={"horizon": 20, "num_cues": 3}, num_envs=16, rollout_steps=16, seq_len=16, num_minibatches=2
    )
    model = RecurrentPPO(GRU(16), env_spec=fresh.env_spec)
    validator = L.Trainer(
        logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
    )
    validator.validate(model, fresh, ckpt_path=str(tmp_path / "last.ckpt"))
    assert fresh.env_kwargs["horizon"] == 20 and fresh.eval_env.horizon == 20


def test_stop_at_success_ends_training_at_the_max_horizon(tmp_path):
    cb = HorizonCurriculum(max_horizon=20, start_horizon=10, every_n_iterations=1, stop_at_success=0.95)
    trainer, _, seen = _fit(tmp_path, 10, cb, extra=[_AlwaysRight()])
    assert seen == [10, 15, 20]
    assert trainer.current_epoch == 3


def test_without_a_rollout_datamodule_the_error_says_what_is_needed():
    with pytest.raises(ConfigError, match="update_task"):
        HorizonCurriculum(max_horizon=10)._datamodule(L.Trainer(logger=False))
