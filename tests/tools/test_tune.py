"""`memrl tune`: a 3-trial study that runs, prunes, resumes after an interruption and writes a runnable best config."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from lightning_memrl.errors import ConfigError, MissingDependencyError
from lightning_memrl.tools import main as cli
from lightning_memrl.tools import tune

optuna = pytest.importorskip("optuna", reason="memrl tune needs the [tune] extra (optuna)")

KEY = "data.env_kwargs.horizon"
TINY = {
    "data": {
        "env": "delayed_cue", "env_kwargs": {"horizon": 4, "num_cues": 2}, "num_envs": 4, "rollout_steps": 8,
        "seq_len": 8, "num_minibatches": 1, "update_epochs": 1, "eval_envs": 4, "eval_episodes": 4,
    },
    "model": {"controller": {"class_path": "lightning_memrl.controllers.GRU", "init_args": {"hidden_size": 8}}},
    "trainer": {
        "max_epochs": 3, "check_val_every_n_epoch": 1, "accelerator": "cpu", "devices": 1,
        "enable_model_summary": False,
    },
}  # fmt: skip
# Episode length equals the horizon: a deterministic metric, so which trial is pruned is known.
SEARCH = {
    "metric": "val/episode_length",
    "direction": "minimize",
    "pruner": {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
    "sampler": {"type": "random", "seed": 0},
    "params": {KEY: {"type": "categorical", "choices": [4, 8]}},
}


@pytest.fixture
def files(tmp_path):
    config, search = tmp_path / "tiny.yaml", tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(TINY))
    search.write_text(yaml.safe_dump(SEARCH))
    return config, search, tmp_path / "study"


def _args(config, search, root, n):
    return ["tune", "--config", str(config), "--search", str(search), "--n-trials", str(n), "--root", str(root)]


def test_study_runs_prunes_resumes_and_writes_a_best_config_fit_accepts(files):
    torch.set_num_threads(1)
    config, search, root = files
    storage = f"sqlite:///{(root / 'study.db').resolve()}"
    root.mkdir()
    study = optuna.create_study(study_name="search", storage=storage, direction="minimize")
    study.enqueue_trial({KEY: 4})
    study.enqueue_trial({KEY: 8})  # longer episodes than trial 0 at every validation: pruned

    assert cli.main(_args(config, search, root, 2)) == 0
    study = optuna.load_study(study_name="search", storage=storage)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert study.trials[0].value == 4.0 and study.trials[1].intermediate_values == {0: 8.0}

    # an interruption (process killed mid-trial) leaves a trial RUNNING in the database
    interrupted = study.ask()
    interrupted.suggest_categorical(KEY, [4, 8])
    assert cli.main(_args(config, search, root, 3)) == 0
    study = optuna.load_study(study_name="search", storage=storage)
    assert study.trials[2].state == optuna.trial.TrialState.FAIL
    retry = study.trials[3]
    assert retry.user_attrs["retry_of"] == 2 and retry.params == interrupted.params
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert len([t for t in study.trials if t.state in done]) == 3
    assert cli.main(_args(config, search, root, 3)) == 0  # nothing left to run: only the best config again
    assert len(optuna.load_study(study_name="search", storage=storage).trials) == 4

    best = root / "best.yaml"
    best_config = yaml.safe_load(best.read_text())
    assert best_config["data"]["env_kwargs"]["horizon"] == 4
    run_root = root / "best_run"
    fit_args = ["--trainer.max_epochs", "1", "--trainer.default_root_dir", str(run_root)]
    assert cli.main(["fit", "--config", str(best), *fit_args]) == 0
    results = json.loads(next(Path(run_root).rglob("results.json")).read_text())
    assert results["length_mean"] == 4.0


class _FakeTrial:
    def __init__(self, prune_after):
        self.prune_after, self.reports = prune_after, []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return len(self.reports) >= self.prune_after


class _Trainer:
    sanity_checking = False
    should_stop = False
    current_epoch = 7

    def __init__(self, metrics):
        self.callback_metrics = metrics


def test_pruning_callback_reports_each_validation_and_stops_the_run_when_told():
    trial = _FakeTrial(prune_after=2)
    callback = tune.OptunaPruning(trial, "val/return")
    trainer = _Trainer({"val/return": torch.tensor(3.5)})
    callback.on_validation_end(trainer, None)
    assert trial.reports == [(7, 3.5)] and not trainer.should_stop and callback.pruned_at is None
    callback.on_validation_end(trainer, None)
    assert trainer.should_stop and callback.pruned_at == 7
    with pytest.raises(ConfigError, match=r"val/success_rate.*\['val/return'\]"):
        tune.OptunaPruning(trial, "val/success_rate").on_validation_end(trainer, None)


def test_bad_search_files_and_missing_optuna_are_clear_errors(tmp_path, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"params": {"model.lr": {"type": "gaussian"}}}))
    with pytest.raises(ConfigError, match=r"params.model.lr.type must be one of"):
        tune.load_search(path)
    path.write_text(yaml.safe_dump({"params": {"model.lr": {"type": "float", "low": 0.1}}}))
    with pytest.raises(ConfigError, match=r"needs \['high'\]"):
        tune.load_search(path)
    monkeypatch.setattr(tune, "_OPTUNA", False)
    with pytest.raises(MissingDependencyError, match=r"\[tune\]"):
        tune._optuna()
