"""`memrl tune`: hyperparameter search with Optuna, each trial a `memrl fit`.

    memrl tune --config configs/experiments/cartpole_gru.yaml --search configs/search/cartpole_gru.yaml --n-trials 20

The search YAML names config keys (as `memrl fit` overrides them) and their distributions:

    metric: val/return            # a validation metric the agent logs (default val/success_rate)
    direction: maximize           # or minimize
    pruner: {type: median, n_startup_trials: 2, n_warmup_steps: 0}   # median | percentile | none
    sampler: {type: tpe, seed: 0}                                    # tpe | random
    params:
      model.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
      model.controller.init_args.hidden_size: {type: int, low: 32, high: 256, log: true}
      data.num_envs: {type: categorical, choices: [8, 16]}

Each validation of a trial reports the metric to Optuna (`OptunaPruning`), which may stop a bad trial
early (pruning). A trial's value is the metric of the final greedy evaluation (`results.json`). The
study lives in SQLite (`--storage`, default `<root>/study.db`): running the same command again
resumes it, retrying a trial an interruption left unfinished, until `--n-trials` trials have
finished. The best trial's full config is printed and written to `--out` (default
`<root>/best.yaml`), runnable as `memrl fit --config <root>/best.yaml`.
Trials run one after another in this process (`trainer.devices: 1`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning_utilities.core.imports import RequirementCache

from lightning_memrl.errors import ConfigError, MissingDependencyError

_OPTUNA = RequirementCache("optuna")
PARAM_TYPES = ("float", "int", "categorical")
PRUNERS = ("median", "percentile", "none")
SAMPLERS = ("tpe", "random")
#: final-evaluation field (results.json) of a validation metric
FINAL_FIELDS = {"val/return": "return_mean", "val/success_rate": "success_rate", "val/episode_length": "length_mean"}


class OptunaPruning(L.Callback):
    """Report `monitor` to an Optuna trial after every validation; stop the run when Optuna prunes it.

    Stopping goes through `trainer.should_stop` (the run ends cleanly, its results are written);
    the caller then marks the trial pruned (`pruned_at` is the epoch, else `None`).

    Args:
        trial: the `optuna.Trial` (anything with `report(value, step)` and `should_prune()`).
        monitor: the logged validation metric, e.g. `val/return`.
    """

    def __init__(self, trial: Any, monitor: str):
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            logged = sorted(k for k in trainer.callback_metrics if k.startswith("val/"))
            raise ConfigError(
                f"the search metric {self.monitor!r} was not logged; validation logged {logged}. "
                "Set `metric:` in the search YAML to one of those (envs without success report val/return)"
            )
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned_at = trainer.current_epoch
            trainer.should_stop = True


def load_search(path: str | Path) -> dict[str, Any]:
    """Read and check a search YAML; errors name the bad entry and the allowed values."""
    search = yaml.safe_load(Path(path).read_text()) or {}
    params = search.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{path}: `params:` must map config keys to distributions, e.g. model.lr: {{type: float}}")
    for key, dist in params.items():
        kind = dist.get("type") if isinstance(dist, dict) else None
        if kind not in PARAM_TYPES:
            raise ConfigError(f"{path}: params.{key}.type must be one of {PARAM_TYPES}, got {kind!r}")
        needed = ("choices",) if kind == "categorical" else ("low", "high")
        missing = [k for k in needed if k not in dist]
        if missing:
            raise ConfigError(f"{path}: params.{key} ({kind}) needs {missing}")
    search.setdefault("metric", "val/success_rate")
    search.setdefault("direction", "maximize")
    if search["direction"] not in ("maximize", "minimize"):
        raise ConfigError(f"{path}: direction must be maximize or minimize, got {search['direction']!r}")
    search.setdefault("pruner", {"type": "median"})
    search.setdefault("sampler", {"type": "tpe", "seed": 0})
    if search["pruner"].get("type") not in PRUNERS:
        raise ConfigError(f"{path}: pruner.type must be one of {PRUNERS}, got {search['pruner'].get('type')!r}")
    if search["sampler"].get("type") not in SAMPLERS:
        raise ConfigError(f"{path}: sampler.type must be one of {SAMPLERS}, got {search['sampler'].get('type')!r}")
    return search


def suggest(trial: Any, params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Draw one value per searched config key from the trial."""
    values = {}
    for key, dist in params.items():
        if dist["type"] == "categorical":
            values[key] = trial.suggest_categorical(key, dist["choices"])
        elif dist["type"] == "int":
            values[key] = trial.suggest_int(key, int(dist["low"]), int(dist["high"]), log=bool(dist.get("log", False)))
        else:
            values[key] = trial.suggest_float(
                key, float(dist["low"]), float(dist["high"]), log=bool(dist.get("log", False)), step=dist.get("step")
            )
    return values


def _optuna():
    if not _OPTUNA:
        raise MissingDependencyError(
            "memrl tune needs Optuna: pip install 'lightning-memrl[tune]' (or pip install optuna)"
        )
    import optuna

    return optuna


def _make_pruner(optuna: Any, spec: dict[str, Any]) -> Any:
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    if spec["type"] == "median":
        return optuna.pruners.MedianPruner(**kwargs)
    if spec["type"] == "percentile":
        return optuna.pruners.PercentilePruner(**kwargs)
    return optuna.pruners.NopPruner()


def _make_sampler(optuna: Any, spec: dict[str, Any]) -> Any:
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    if spec["type"] == "random":
        return optuna.samplers.RandomSampler(**kwargs)
    return optuna.samplers.TPESampler(**kwargs)


def run_trial(
    trial: Any, configs: list[str], search: dict[str, Any], root: Path, extra: list[str]
) -> tuple[float, int | None]:
    """One `memrl fit` with the trial's values: `(final metric, epoch it was pruned at or None)`."""
    from lightning_memrl.cli import TRAINER_DEFAULTS, MemRLCLI

    values = suggest(trial, search["params"])
    args = [arg for path in configs for arg in ("--config", path)]
    for key, value in values.items():
        args += [f"--{key}", json.dumps(value)]  # JSON is YAML: jsonargparse reads it back typed
    args += ["--trainer.default_root_dir", str(root / f"trial_{trial.number:03d}")]
    args += ["--trainer.enable_progress_bar", "false", *extra]
    pruning = OptunaPruning(trial, search["metric"])
    cli = MemRLCLI(args=args, run=False, trainer_defaults={**TRAINER_DEFAULTS, "callbacks": [pruning]})
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    log_dir = Path(cli.trainer.log_dir)
    trial.set_user_attr("config", str(log_dir / "config.yaml"))
    record = json.loads((log_dir / "results.json").read_text())
    field = FINAL_FIELDS.get(search["metric"])
    value = record.get(field) if field else None
    if value is None:  # a metric without a final-evaluation field: its last validation value
        value = float(cli.trainer.callback_metrics[search["metric"]])
    return float(value), pruning.pruned_at


def _resume(optuna: Any, study: Any) -> None:
    """Queue again the values of trials an interruption ended: those left running (process killed)
    and those failed by an interrupt (Ctrl-C); the running ones are marked failed first."""
    states = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for trial in trials:
        interrupted = trial.state == states.RUNNING or (
            trial.state == states.FAIL and trial.user_attrs.get("interrupted", False)
        )
        if not interrupted or trial.number in retried:
            continue
        if trial.state == states.RUNNING:
            study.tell(trial.number, state=states.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
        print(f"memrl tune: trial {trial.number} was interrupted; its values run again")


def write_best(study: Any, out: Path, root: Path) -> str:
    """Write the best trial's full config as a runnable YAML (its runs go to `<root>/best`)."""
    best = study.best_trial
    config = yaml.safe_load(Path(best.user_attrs["config"]).read_text())
    config.setdefault("trainer", {})["default_root_dir"] = str(root / "best")
    header = (
        f"# memrl tune: best of study {study.study_name!r}, trial {best.number}, value {best.value:.6g}\n"
        f"# params: {json.dumps(best.params)}\n# run: memrl fit --config {out}\n"
    )
    text = header + yaml.safe_dump(config, sort_keys=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="memrl tune", description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", required=True, help="config file(s), as for memrl fit")
    parser.add_argument("--search", required=True, help="search YAML: params, metric, direction, pruner, sampler")
    parser.add_argument("--n-trials", type=int, required=True, help="finished (complete or pruned) trials wanted")
    parser.add_argument("--study-name", default=None, help="default: the search file's name")
    parser.add_argument("--root", default=None, help="trial runs and study; default runs/tune/<study-name>")
    parser.add_argument("--storage", default=None, help="Optuna storage URL; default sqlite:///<root>/study.db")
    parser.add_argument("--out", default=None, help="best config YAML; default <root>/best.yaml")
    parser.add_argument("overrides", nargs="*", help="extra memrl fit arguments for every trial, after --")
    args = parser.parse_args(argv)
    if args.n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, got {args.n_trials}")
    optuna = _optuna()
    search = load_search(args.search)
    name = args.study_name or Path(args.search).stem
    root = Path(args.root or Path("runs") / "tune" / name)
    root.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{(root / 'study.db').resolve()}"
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction=search["direction"],
        sampler=_make_sampler(optuna, search["sampler"]),
        pruner=_make_pruner(optuna, search["pruner"]),
    )
    _resume(optuna, study)
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished_states))
    print(f"memrl tune: study {name!r} in {storage}: {done} finished trials, {args.n_trials} wanted")

    def objective(trial: Any) -> float:
        try:
            value, pruned_at = run_trial(trial, args.config, search, root, args.overrides)
        except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit
            trial.set_user_attr("interrupted", True)
            raise
        if pruned_at is not None:
            raise optuna.TrialPruned(f"pruned after epoch {pruned_at}")
        return value

    if args.n_trials > done:
        try:
            study.optimize(objective, n_trials=args.n_trials - done)
        except (KeyboardInterrupt, SystemExit):
            print(f"memrl tune: interrupted; run the same command again to resume study {name!r}")
            return 130
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        print("memrl tune: no trial completed (all pruned or failed): no best config")
        return 1
    out = Path(args.out or root / "best.yaml")
    text = write_best(study, out, root)
    print(f"memrl tune: best value {study.best_value:.6g} with {study.best_params}; config in {out}\n{text}")
    return 0
