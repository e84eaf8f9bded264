"""TaskCurriculum: every registered task walks from its start to each preset, resume is exact, ranks agree."""

import json
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.callbacks import ResultsJson, TaskCurriculum
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.envs import DIFFICULTIES, get_task_spec, task_names
from lightning_memrl.errors import ConfigError


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"factor": 1.0},
        {"start_horizon": 0},
        {"target_success": 1.5},
        {"every_n_env_steps": 0},
        {"eval_episodes": 0},
    ],
)
def test_bad_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        TaskCurriculum(**kwargs)


# --- the callback on a data module, evaluations scripted -----------------------------------------
class _Strategy:
    """One rank's view of the collectives: `others` are the other ranks' success rates and decisions."""

    def __init__(self, other_success=(), other_decisions=()):
        self.other_success = list(other_success)
        self.other_decisions = list(other_decisions)
        self.decisions = []

    def reduce(self, value, reduce_op="mean"):
        return (value + sum(self.other_success)) / (1 + len(self.other_success))

    def reduce_boolean_decision(self, decision, all=True):
        self.decisions.append(decision)
        others = self.other_decisions.pop(0) if self.other_decisions else decision
        return decision and others if all else decision or others


def _datamodule(task, difficulty, **kwargs):
    dm = RolloutDataModule(
        env=task,
        difficulty=difficulty,
        num_envs=2,
        rollout_steps=8,
        seq_len=8,
        num_minibatches=1,
        eval_envs=2,
        **kwargs,
    )
    dm.trainer = SimpleNamespace(global_rank=0, world_size=1, strategy=SimpleNamespace(root_device=torch.device("cpu")))
    dm.setup("fit")
    return dm


def _driver(dm, successes, strategy=None):
    """A trainer stand-in whose greedy evaluations return `successes` in turn."""
    results = iter(successes)
    dm.evaluate = lambda policy, num_episodes=None: {"success_rate": torch.tensor(next(results))}
    trainer = SimpleNamespace(
        datamodule=dm, strategy=strategy or _Strategy(), world_size=1, should_stop=False, current_epoch=0
    )
    logged = {}
    log = lambda name, value, **kwargs: logged.setdefault(name, []).append(value)  # noqa: E731
    module = SimpleNamespace(training=True, eval=lambda: None, train=lambda mode=True: None, log=log, logged=logged)
    return trainer, module


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("task", task_names())
def test_the_callback_takes_the_data_module_through_every_stage_to_the_preset(task, difficulty):
    dm = _datamodule(task, difficulty)
    cb = TaskCurriculum(every_n_env_steps=32)
    # evaluations: stage 0 fails once, then every stage passes, one stage per evaluation round
    trainer, module = _driver(dm, [0.5, *[1.0, 0.5] * 100])
    tasks = []
    update_task = dm.update_task
    dm.update_task = lambda **kwargs: tasks.append(kwargs) or update_task(**kwargs)
    cb.on_fit_start(trainer, module)
    assert tasks == [cb.stages[0]] and dm.collector.env.horizon == cb.stages[0]["horizon"]
    while not trainer.should_stop:
        trainer.current_epoch += 1
        dm.collector.env_steps += 16  # one iteration of 2 envs x 8 steps: an evaluation every other iteration
        cb.on_train_epoch_end(trainer, module)
        assert dm.collector.env.horizon == dm.eval_env.horizon == cb.stages[cb.stage]["horizon"]
    assert tasks == cb.stages  # every stage in turn, the last one the preset
    assert dm.env_kwargs == get_task_spec(task).kwargs(difficulty)
    assert [h["stage"] for h in cb.history][:2] == [0, 0] and cb.history[-1]["stage"] == len(cb.stages) - 1
    fields = cb.results_fields()
    assert fields["target_success"] == get_task_spec(task).target_success[difficulty]
    assert fields["env_steps_to_target"] == cb.history[-1]["env_steps"] and fields["curriculum_stage"] == len(cb.stages)


def test_a_raise_evaluates_the_next_stage_at_once_and_goes_on_while_stages_pass():
    dm = _datamodule("delayed_cue", "medium")
    cb = TaskCurriculum(every_n_env_steps=1)
    trainer, module = _driver(dm, [1.0, 0.97, 0.3, 0.99, 0.1])
    cb.on_fit_start(trainer, module)
    cb._evaluate_and_update(trainer, module, 1)  # passes stages 0 and 1, fails stage 2: one round
    assert cb.stage == 2 and [(h["stage"], h["raised"]) for h in cb.history] == [(0, True), (1, True), (2, False)]
    assert module.logged["curriculum/success"] == pytest.approx([0.3])  # one value per round: where it stopped
    assert dm.env_kwargs == cb.stages[2]
    cb._evaluate_and_update(trainer, module, 2)
    assert cb.stage == 3 and not trainer.should_stop


def test_ranks_agree_on_the_averaged_success_and_on_every_decision():
    dm = _datamodule("delayed_cue", "easy")
    cb = TaskCurriculum(every_n_env_steps=1, probe_target=False)
    # this rank alone would stay (0.92 < 0.95); with the other rank's 1.0 the mean is 0.96: both raise
    trainer, module = _driver(dm, [0.92, 0.0], _Strategy(other_success=[1.0]))
    cb.on_fit_start(trainer, module)
    cb._evaluate_and_update(trainer, module, 1)  # then stage 1 at once: (0.0 + 1.0) / 2 stays
    assert cb.stage == 1 and [h["success"] for h in cb.history] == pytest.approx([0.96, 0.5])
    # every rank saw 1.0, but the other rank's decision says no: nobody moves
    trainer, module = _driver(dm, [1.0], _Strategy(other_decisions=[False, False]))
    cb._evaluate_and_update(trainer, module, 2)
    assert cb.stage == 1 and trainer.strategy.decisions == [True, False]


def _evaluated_tasks(dm, successes):
    """Make `dm.evaluate` return `successes` in turn and record the horizon each evaluation ran at."""
    results, horizons = iter(successes), []

    def evaluate(policy, num_episodes=None):
        horizons.append(dm.eval_env.horizon)
        return {"success_rate": torch.tensor(next(results))}

    dm.evaluate = evaluate
    return horizons


def _one_round_at_the_first_stage(successes, **kwargs):
    """permuted_copy medium (target_success 0.85) at its first stage; one evaluation round whose evaluations
    return `successes` in turn. Returns the data module, the callback, the trainer and the evaluated horizons."""
    dm = _datamodule("permuted_copy", "medium")
    cb = TaskCurriculum(every_n_env_steps=1, **kwargs)
    trainer, module = _driver(dm, [])
    cb.on_fit_start(trainer, module)
    horizons = _evaluated_tasks(dm, successes)
    cb._evaluate_and_update(trainer, module, 1)
    return dm, cb, trainer, horizons


def test_a_near_pass_evaluates_the_target_and_moves_there_when_it_is_met():
    """Stage 0 at 0.91: under the 0.95 that raises, over permuted_copy medium's own 0.85. The target, evaluated
    at once, meets it: the curriculum moves there, the target reached."""
    dm, cb, trainer, horizons = _one_round_at_the_first_stage([0.91, 0.88])
    assert horizons == [cb.stages[0]["horizon"], cb.stages[-1]["horizon"]]
    assert cb.stage == len(cb.stages) - 1 and dm.env_kwargs == cb.stages[-1] and trainer.should_stop
    assert cb.reached["success"] == pytest.approx(0.88) and cb.history[-1]["probed_from"] == 0
    assert cb.results_fields()["env_steps_to_target"] == cb.history[-1]["env_steps"]


def test_a_probe_that_misses_leaves_the_training_task_where_it_was():
    dm, cb, trainer, horizons = _one_round_at_the_first_stage([0.91, 0.2])
    assert cb.stage == 0 and dm.env_kwargs == cb.stages[0] and dm.eval_env.horizon == cb.stages[0]["horizon"]
    assert len(horizons) == 2 and cb.reached is None and not trainer.should_stop
    assert cb.results_fields()["curriculum_success"] == pytest.approx(0.91)  # the stage's, not the probe's


@pytest.mark.parametrize(("success", "probe_target"), [(0.84, True), (0.91, False)])
def test_no_probe_under_the_tasks_own_bar_or_when_it_is_off(success, probe_target):
    _, cb, _, horizons = _one_round_at_the_first_stage([success], probe_target=probe_target)
    assert horizons == [cb.stages[0]["horizon"]] and cb.stage == 0


def test_stop_at_target_false_keeps_training_and_records_the_first_time_only():
    dm = _datamodule("t_maze", "easy")
    cb = TaskCurriculum(every_n_env_steps=1, stop_at_target=False, start_horizon=50)
    trainer, module = _driver(dm, [1.0, 0.2, 1.0])
    cb.on_fit_start(trainer, module)
    assert len(cb.stages) == 1
    for iteration in (1, 2, 3):
        cb._evaluate_and_update(trainer, module, iteration)
    assert not trainer.should_stop and cb.reached["iteration"] == 1


def test_a_target_success_is_needed_without_a_difficulty():
    dm = _datamodule("delayed_cue", None, env_kwargs={"horizon": 30, "num_cues": 3})
    trainer, module = _driver(dm, [])
    with pytest.raises(ConfigError, match="target success"):
        TaskCurriculum().on_fit_start(trainer, module)
    cb = TaskCurriculum(target_success=0.9)
    cb.on_fit_start(trainer, module)
    assert cb.stages[-1] == {"horizon": 30, "num_cues": 3}


# --- real fits: resume and results.json ----------------------------------------------------------
class _Stages(L.Callback):
    """The task each iteration collected from."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_start(self, trainer, pl_module):
        env = trainer.datamodule.collector.env
        self.seen.append((env.horizon, env.num_cues))


def _fit(root, epochs, ckpt_path=None):
    L.seed_everything(0)
    dm = RolloutDataModule(
        env="multi_cue_delay",
        difficulty="easy",
        env_kwargs={"horizon": 30, "vocab_size": 2},
        num_envs=8,
        rollout_steps=16,
        seq_len=16,
        num_minibatches=2,
        update_epochs=1,
        eval_envs=16,
        eval_episodes=16,
    )
    model = RecurrentPPO(GRU(16), env_spec=dm.env_spec)
    # real evaluations decide: about chance (1/2 with one cue, 1/4 with two) against 0.4 raises some stages only;
    # an iteration is 8 envs x 16 steps = 128 env steps: an evaluation round every other iteration (2, 4, 6)
    curriculum = TaskCurriculum(threshold=0.4, factor=1.2, start={"num_cues": 1}, every_n_env_steps=130)
    stages = _Stages()
    trainer = L.Trainer(
        max_epochs=epochs,
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[curriculum, stages, ResultsJson(), ModelCheckpoint(dirpath=root, save_last=True, save_top_k=0)],
    )
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    return curriculum, stages.seen, params, dm


def _without_wall(history):
    return [{k: v for k, v in h.items() if k != "wall_s"} for h in history]


def test_resume_mid_schedule_is_exact(tmp_path):
    full, seen_full, params_full, _ = _fit(tmp_path / "full", 6)
    raised = [h["raised"] for h in full.history]
    assert any(raised) and not all(raised), "the check needs evaluations that raise and some that do not"
    part, _, _, _ = _fit(tmp_path / "part", 4)  # ends on an evaluation: the resumed 5th iteration must not evaluate
    assert 0 < part.stage < len(part.stages) - 1, "the check needs a run stopped mid-schedule"
    resumed, seen_resumed, params_resumed, _ = _fit(tmp_path / "part", 6, str(tmp_path / "part" / "last.ckpt"))
    assert resumed.stages == full.stages
    assert seen_resumed == seen_full[4:]  # the same stages, iteration by iteration
    assert _without_wall(resumed.history) == _without_wall(full.history)
    assert resumed.stage == full.stage
    torch.testing.assert_close(params_resumed, params_full, rtol=0, atol=0)
    assert resumed.history[-1]["wall_s"] >= part.history[-1]["wall_s"]  # wall time adds up over the fits


def test_results_json_measures_the_target_and_records_the_curriculum(tmp_path):
    curriculum, seen, _, dm = _fit(tmp_path, 2)
    assert seen[0] == (11, 1)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["length_mean"] == 30  # the final evaluation ran on the target task
    stage = curriculum.stages[curriculum.stage]
    assert stage["horizon"] < 30 and dm.env_kwargs == stage  # while training stays at its stage
    assert dm.collector.env.horizon == dm.eval_env.horizon == stage["horizon"]
    assert results["target_success"] == get_task_spec("multi_cue_delay").target_success["easy"]
    assert results["curriculum_stages"] == len(curriculum.stages)
    assert results["curriculum_stage"] == curriculum.stage + 1
    assert "env_steps_to_target" in results and "wall_s_to_target" in results
    summary = json.loads((tmp_path / "curriculum.json").read_text())
    assert summary["stages"] == curriculum.stages and summary["history"] == curriculum.history


def test_evaluations_come_every_n_env_steps_whatever_the_iteration_size():
    dm = _datamodule("delayed_cue", "easy")
    cb = TaskCurriculum(every_n_env_steps=40)
    trainer, module = _driver(dm, [0.0] * 10)
    cb.on_fit_start(trainer, module)
    for iteration in range(1, 11):
        trainer.current_epoch = iteration - 1
        dm.collector.env_steps += 16
        cb.on_train_epoch_end(trainer, module)
    assert [h["iteration"] for h in cb.history] == [3, 6, 9]  # 48, 96, 144 env steps: each >= 40 after the last
