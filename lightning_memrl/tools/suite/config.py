"""Suite YAML files: load and check them, and expand their grid into runs.

The schema is documented in `lightning_memrl.tools.suite.run`. Relative paths (base configs,
`root_dir`) are relative to the working directory, as for `memrl fit --config`.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from lightning_memrl.envs.registry import DIFFICULTIES, GYM_PREFIX, get_task_spec
from lightning_memrl.errors import ConfigError

SUITE_KEYS = (
    "name",
    "description",
    "base_configs",
    "root_dir",
    "tasks",
    "difficulties",
    "experiments",
    "controllers",
    "seeds",
    "overrides",
    "difficulty_overrides",
    "task_overrides",
)
# Set by the grid for every run: an override of these would silently break the grid.
GRID_KEYS = (
    "data.env",
    "data.difficulty",
    "data.seed",
    "model.controller",
    "trainer.default_root_dir",
    "trainer.logger",
)
FILTER_KEYS = ("task", "difficulty", "controller", "seed")
NO_DIFFICULTY = "default"  # the difficulty of an experiment on a gym:<id> env, which has no presets
_LOG_LOCATION_KEYS = ("default_root_dir", "logger")  # trainer keys that say where a run logs, not what it is


@dataclass(frozen=True)
class ControllerSpec:
    """An agent arm of the grid: its short `name` (used in run ids and tables) and what it changes.

    Either a controller class (`class_path`, `init_args`: the grid sets `model.controller`), or config
    files (`configs`, e.g. a memory model) passed after the base and experiment configs; `overrides`
    (config keys) apply to this arm's runs only. A class and files may be combined.
    """

    name: str
    class_path: str | None = None
    init_args: dict[str, Any] = field(default_factory=dict)
    configs: tuple[str, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)

    def as_config(self) -> dict[str, Any] | None:
        """The `model.controller` of the arm's runs (None: the configs decide)."""
        if self.class_path is None:
            return None
        config: dict[str, Any] = {"class_path": self.class_path}
        if self.init_args:
            config["init_args"] = copy.deepcopy(self.init_args)
        return config


@dataclass(frozen=True)
class ExperimentSpec:
    """A task x difficulty cell of the grid, with the config files that set it up (after `base_configs`).

    A `gym:<id>` task has no difficulty presets: its difficulty is `default` (`data.difficulty: null`).
    """

    task: str
    difficulty: str = NO_DIFFICULTY
    configs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuiteRun:
    """One cell x seed of a suite: a `memrl fit` with its own log dir.

    Attributes:
        suite: name of the suite.
        task: registered task name.
        difficulty: difficulty preset.
        controller: the controller.
        seed: `data.seed` (also seeds everything else).
        run_dir: the run's log dir (TensorBoard events, checkpoints, `results.json`).
        base_configs: config files passed first as `--config`: the suite's, the experiment's, the arm's.
        overrides: nested config set on top of the base configs (the grid's values included).
        config_hash: hash of the base configs' text and `overrides` except the log location (so results
            recorded on another machine, under another root dir, still count); a changed hash means a new run.
    """

    suite: str
    task: str
    difficulty: str
    controller: ControllerSpec
    seed: int
    run_dir: Path
    base_configs: tuple[str, ...]
    overrides: dict[str, Any]
    config_hash: str

    @property
    def run_id(self) -> str:
        return f"{self.task}/{self.difficulty}/{self.controller.name}/seed{self.seed}"

    @property
    def run_config_path(self) -> Path:
        """The file holding `overrides`, passed last as `--config`."""
        return self.run_dir / "suite_run.yaml"

    def merged_config(self) -> dict[str, Any]:
        """The base configs deep-merged with the overrides (the values `memrl fit` gets from files)."""
        merged: dict[str, Any] = {}
        for path in self.base_configs:
            merged = deep_merge(merged, _read_yaml(Path(path)))
        return deep_merge(merged, self.overrides)

    def horizon(self) -> int | None:
        """The episode length this run trains at (difficulty preset, then `data.env_kwargs`)."""
        env_kwargs = self.merged_config().get("data", {}).get("env_kwargs") or {}
        if is_gym_task(self.task):
            return None
        return get_task_spec(self.task).kwargs(self.difficulty, **env_kwargs).get("horizon")

    def matches(self, filters: Iterable[str]) -> bool:
        """Whether the run passes every filter: `key=glob[,glob]` (task, difficulty, controller, seed) or
        a glob on the run id (`delayed_cue/*/gru/*`)."""
        fields = {"task": self.task, "difficulty": self.difficulty, "controller": self.controller.name}
        fields["seed"] = str(self.seed)
        for spec in filters:
            if "=" in spec:
                key, _, patterns = spec.partition("=")
                key = key.strip()
                if key not in fields:
                    raise ConfigError(f"unknown filter key {key!r} in {spec!r}; use one of {', '.join(FILTER_KEYS)}")
                value = fields[key]
                if not any(fnmatch.fnmatchcase(value, p.strip()) for p in patterns.split(",")):
                    return False
            elif not fnmatch.fnmatchcase(self.run_id, spec):
                return False
        return True


@dataclass(frozen=True)
class SuiteSpec:
    """A loaded suite file (see the schema in `lightning_memrl.tools.suite.run`)."""

    name: str
    description: str
    base_configs: tuple[str, ...]
    root_dir: Path
    experiments: tuple[ExperimentSpec, ...]
    controllers: tuple[ControllerSpec, ...]
    seeds: tuple[int, ...]
    overrides: dict[str, Any]
    difficulty_overrides: dict[str, dict[str, Any]]
    task_overrides: dict[str, dict[str, Any]]
    command_line: dict[str, Any] = field(default_factory=dict)  # `--set`: over every override section

    def runs(self, root_dir: Path | None = None) -> list[SuiteRun]:
        """Every run of the grid, in order experiment (task -> difficulty) -> controller -> seed."""
        root = Path(root_dir) if root_dir is not None else self.root_dir
        out = []
        for experiment in self.experiments:
            task, difficulty = experiment.task, experiment.difficulty
            for controller in self.controllers:
                configs = (*self.base_configs, *experiment.configs, *controller.configs)
                config_text = "".join(Path(p).read_text() for p in configs)
                for seed in self.seeds:
                    run_dir = root / task.replace(":", "_") / difficulty / controller.name / f"seed{seed}"
                    overrides = self._overrides(task, difficulty, controller, seed, run_dir)
                    what = {k: v for k, v in overrides.items() if k != "trainer"}  # not where it logs
                    what["trainer"] = {
                        k: v for k, v in overrides.get("trainer", {}).items() if k not in _LOG_LOCATION_KEYS
                    }
                    digest = hashlib.sha1((config_text + json.dumps(what, sort_keys=True)).encode())
                    out.append(
                        SuiteRun(
                            self.name,
                            task,
                            difficulty,
                            controller,
                            seed,
                            run_dir,
                            configs,
                            overrides,
                            digest.hexdigest()[:12],
                        )
                    )
        return out

    def _overrides(
        self, task: str, difficulty: str, controller: ControllerSpec, seed: int, run_dir: Path
    ) -> dict[str, Any]:
        config = nested(self.overrides)
        config = deep_merge(config, nested(self.difficulty_overrides.get(difficulty, {})))
        config = deep_merge(config, nested(self.task_overrides.get(task, {})))
        config = deep_merge(config, nested(self.task_overrides.get(f"{task}/{difficulty}", {})))
        config = deep_merge(config, nested(controller.overrides))
        config = deep_merge(config, nested(self.command_line))
        logger = {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": str(run_dir), "name": "", "version": ""},
        }
        grid = {
            "data.env": task,
            "data.difficulty": None if difficulty == NO_DIFFICULTY else difficulty,
            "data.seed": seed,
            "trainer.default_root_dir": str(run_dir),
            "trainer.logger": logger,
        }
        if controller.as_config() is not None:
            grid["model.controller"] = controller.as_config()
        return deep_merge(config, nested(grid))


# --- loading ----------------------------------------------------------------------------------------
def load_suite(path: str | Path) -> SuiteSpec:
    """Read and check a suite YAML file; errors name the bad key and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"suite file {str(path)!r} not found; the shipped suites are in configs/suites/")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"suite file {path} must hold a mapping with keys {', '.join(SUITE_KEYS)}")
    unknown = sorted(set(raw) - set(SUITE_KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in suite {path}; allowed: {', '.join(SUITE_KEYS)}")
    name = str(raw.get("name") or path.stem)
    base = raw.get("base_configs") or []
    base = [base] if isinstance(base, str) else list(base)
    for config in base:
        _check_config_file(config, "base config", path)
    experiments = _experiments(raw, path)
    controllers = tuple(_controller(item, path) for item in _required(raw, "controllers", path))
    names = [c.name for c in controllers]
    if len(set(names)) != len(names):
        raise ConfigError(f"controller names repeat in suite {path}: {names}; give each a distinct `name`")
    seeds = raw.get("seeds", [0])
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"suite {path}: seeds must be a count or a list of integers, got {raw.get('seeds')!r}")
    overrides = _mapping(raw, "overrides", path)
    per_difficulty = _mapping(raw, "difficulty_overrides", path)
    per_task = _mapping(raw, "task_overrides", path)
    for key in per_difficulty:
        if key not in DIFFICULTIES:
            raise ConfigError(f"difficulty_overrides key {key!r} in suite {path} is not one of {list(DIFFICULTIES)}")
    for where, mapping in (
        [("overrides", overrides)]
        + [
            (f"{section}.{k}", v)
            for section, group in (("difficulty_overrides", per_difficulty), ("task_overrides", per_task))
            for k, v in group.items()
        ]
        + [(f"controllers.{c.name}.overrides", c.overrides) for c in controllers]
    ):
        if not isinstance(mapping, dict):
            raise ConfigError(f"suite {path}: {where} must be a mapping of config keys to values")
        key = _grid_key(mapping)
        if key is not None:
            raise ConfigError(
                f"suite {path}: {where} sets {key!r}, which the grid sets for every run; "
                "use tasks / difficulties / controllers / seeds / root_dir instead"
            )
    return SuiteSpec(
        name=name,
        description=str(raw.get("description", "")),
        base_configs=tuple(str(b) for b in base),
        root_dir=Path(raw.get("root_dir") or f"runs/suites/{name}"),
        experiments=experiments,
        controllers=controllers,
        seeds=tuple(seeds),
        overrides=overrides,
        difficulty_overrides=per_difficulty,
        task_overrides=per_task,
    )


def with_command_line(suite: SuiteSpec, sets: Sequence[str] = (), variant: str | None = None) -> SuiteSpec:
    """`suite` with `--set KEY=VALUE` on top of every override section (the value read as YAML) and, with
    `variant`, every arm renamed `<name>-<variant>` (its own run ids, directories and table rows, so a variant
    and the suite as written can share one results file)."""
    updates: dict[str, Any] = {}
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, for example --set data.num_envs=512")
        updates[key.strip()] = yaml.safe_load(text)
    key = _grid_key(updates)
    if key is not None:
        raise ConfigError(
            f"--set {key}: the grid sets {key!r} for every run; pick runs with --filter (task, difficulty, "
            "controller, seed) and their log root with --root-dir"
        )
    controllers = suite.controllers
    if variant is not None:
        if not variant or "/" in variant:
            raise ConfigError(f"--variant {variant!r}: give a non-empty name without '/' (it joins the arms' names)")
        controllers = tuple(replace(c, name=f"{c.name}-{variant}") for c in controllers)
    return replace(suite, command_line=deep_merge(suite.command_line, nested(updates)), controllers=controllers)


def _required(raw: dict[str, Any], key: str, path: Path) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"suite {path} needs a non-empty list `{key}`")
    return value


def _str_list(raw: dict[str, Any], key: str, path: Path) -> list[str]:
    value = _required(raw, key, path)
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"suite {path}: `{key}` must be a list of names, got {value!r}")
    return value


def _mapping(raw: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"suite {path}: `{key}` must be a mapping, got {value!r}")
    return value


def _experiments(raw: dict[str, Any], path: Path) -> tuple[ExperimentSpec, ...]:
    """The grid's cells: `tasks` x `difficulties`, or an explicit `experiments` list with config files."""
    if "experiments" in raw:
        if "tasks" in raw or "difficulties" in raw:
            raise ConfigError(f"suite {path}: give either `experiments` or `tasks` + `difficulties`, not both")
        cells = []
        for item in _required(raw, "experiments", path):
            if not isinstance(item, dict) or "task" not in item:
                raise ConfigError(
                    f"suite {path}: an experiment is a mapping with task (and difficulty, configs), got {item!r}"
                )
            extra = set(item) - {"task", "difficulty", "configs"}
            if extra:
                raise ConfigError(
                    f"suite {path}: experiment keys {sorted(extra)} unknown; use task, difficulty, configs"
                )
            difficulty = str(item.get("difficulty", NO_DIFFICULTY))
            cells.append(ExperimentSpec(str(item["task"]), difficulty, _configs(item, path)))
    else:
        tasks = _str_list(raw, "tasks", path)
        difficulties = _str_list(raw, "difficulties", path)
        cells = [ExperimentSpec(task, difficulty) for task in tasks for difficulty in difficulties]
    for cell in cells:
        if is_gym_task(cell.task) != (cell.difficulty == NO_DIFFICULTY):
            raise ConfigError(
                f"suite {path}: experiment {cell.task}/{cell.difficulty}: a gym:<id> task takes no difficulty "
                "(configure it through data.env_kwargs) and a built-in task needs one"
            )
        if not is_gym_task(cell.task) and cell.difficulty not in DIFFICULTIES:
            raise ConfigError(
                f"unknown difficulty {cell.difficulty!r} in suite {path}; choose from {list(DIFFICULTIES)}"
            )
    return tuple(cells)


def is_gym_task(task: str) -> bool:
    """Whether a suite task is a gymnasium env (`gym:<id>`) rather than a registered task."""
    return task.startswith(GYM_PREFIX)


def _configs(item: dict[str, Any], path: Path) -> tuple[str, ...]:
    configs = item.get("configs") or []
    configs = [configs] if isinstance(configs, str) else list(configs)
    for config in configs:
        _check_config_file(config, "config", path)
    return tuple(str(c) for c in configs)


def _check_config_file(config: str, what: str, path: Path) -> None:
    if not Path(config).is_file():
        raise ConfigError(
            f"{what} {config!r} of suite {path} not found (paths are relative to the working "
            f"directory {Path.cwd()}); run memrl suite from the repository root or use an absolute path"
        )


def _controller(item: Any, path: Path) -> ControllerSpec:
    if isinstance(item, str):
        return ControllerSpec(item.rsplit(".", 1)[-1].lower(), item)
    if isinstance(item, dict) and (isinstance(item.get("class_path"), str) or "name" in item):
        extra = set(item) - {"name", "class_path", "init_args", "configs", "overrides"}
        if extra:
            raise ConfigError(
                f"suite {path}: controller keys {sorted(extra)} unknown; use name, class_path, init_args, "
                "configs, overrides"
            )
        class_path = item.get("class_path")
        name = str(item.get("name") or class_path.rsplit(".", 1)[-1].lower())
        overrides = item.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"suite {path}: overrides of controller {name!r} must be a mapping")
        return ControllerSpec(name, class_path, dict(item.get("init_args") or {}), _configs(item, path), overrides)
    raise ConfigError(
        f"suite {path}: a controller is a class path, or a mapping with a class_path or a name (and optional "
        f"init_args, configs, overrides), got {item!r}"
    )


def _grid_key(mapping: dict[str, Any]) -> str | None:
    """The first key of `mapping` (dotted) that sets what the grid sets for every run, or None."""
    for key in flatten(nested(mapping)):
        if any(key == grid_key or key.startswith(grid_key + ".") for grid_key in GRID_KEYS):
            return key
    return None


# --- dict helpers -----------------------------------------------------------------------------------
def nested(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """`{"data.num_envs": 16}` -> `{"data": {"num_envs": 16}}` (nested mappings are kept and merged)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        parts = str(key).split(".")
        node: dict[str, Any] = {}
        leaf = node
        for part in parts[:-1]:
            leaf[part] = {}
            leaf = leaf[part]
        leaf[parts[-1]] = nested(value) if isinstance(value, Mapping) and "class_path" not in value else value
        out = deep_merge(out, node)
    return out


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"data": {"num_envs": 16}}` -> `{"data.num_envs": 16}`."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and "class_path" not in value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `update` merged in; mappings merge, anything else is replaced (and so is a
    `class_path` mapping whose class changes)."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        old = out.get(key)
        if (
            isinstance(value, Mapping)
            and isinstance(old, Mapping)
            and value.get("class_path", old.get("class_path")) == old.get("class_path")
        ):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must hold a mapping")
    return data
