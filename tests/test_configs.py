"""Every shipped experiment config (and every documented composition of them) parses as `memrl fit` reads it.

A renamed argument or a stale key in a YAML under `configs/` fails here, not in the middle of a long run.
`--print_config` validates every key and class path against the signatures without building anything.
"""

import contextlib
import io
from pathlib import Path

import pytest

from lightning_memrl.tools.main import main
from lightning_memrl.tools.suite import run as suite_run
from lightning_memrl.tools.suite.config import flatten, load_suite

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

EXPERIMENTS = sorted(str(p.relative_to(CONFIGS)) for p in (CONFIGS / "experiments").glob("*.yaml"))
AGENTS = sorted(str(p.relative_to(CONFIGS)) for p in (CONFIGS / "agents").glob("*.yaml"))
STANDALONE = ["quickstart.yaml", *EXPERIMENTS, *AGENTS]
MEMORY_TASKS = [e for e in EXPERIMENTS if Path(e).name.startswith("memory_")]
MEMORY_MODELS = sorted(str(p.relative_to(CONFIGS)) for p in (CONFIGS / "models" / "memories").glob("*.yaml"))
CONTROLLER_TASKS = [e for e in EXPERIMENTS if Path(e).name.startswith("controllers_")]
CONTROLLER_MODELS = sorted(str(p.relative_to(CONFIGS)) for p in (CONFIGS / "models" / "controllers").glob("*.yaml"))
SUITES = sorted((CONFIGS / "suites").glob("*.yaml"))

COMPOSED = [
    *[[task, model] for task in MEMORY_TASKS for model in MEMORY_MODELS],
    ["experiments/memory_associative_recall_medium.yaml", "models/memories/kv.yaml", "overlays/gpu_scale.yaml"],
    [
        "experiments/memory_associative_recall_medium.yaml",
        "models/memories/kv_lag.yaml",
        "overlays/associative_recall_curriculum.yaml",
    ],
    ["experiments/delayed_cue_h200_curriculum.yaml", "models/memories/ring.yaml"],
    ["experiments/episodic_delayed_cue.yaml", "models/memories/episodic_faiss.yaml", "callbacks/faiss_rebuild.yaml"],
    ["experiments/episodic_delayed_cue.yaml", "models/memories/episodic_sleep.yaml", "callbacks/sleep.yaml"],
    ["quickstart.yaml", "models/memories/kv.yaml", "callbacks/kl_stop.yaml"],
    ["quickstart.yaml", "models/memories/kv.yaml", "callbacks/curriculum.yaml"],
    *[[task, model] for task in CONTROLLER_TASKS for model in CONTROLLER_MODELS],
]


def _print_config(files: list[str]) -> str:
    args = ["fit"]
    for name in files:
        args += ["--config", str(CONFIGS / name)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code == 0, f"memrl fit rejected {files}"
    return out.getvalue()


@pytest.mark.parametrize("name", STANDALONE)
def test_config_parses(name):
    assert "class_path" in _print_config([name])


@pytest.mark.parametrize("files", COMPOSED, ids=lambda files: "+".join(Path(f).stem for f in files))
def test_composed_configs_parse(files):
    printed = _print_config(files)
    model = (CONFIGS / files[1]).read_text()  # the model file's class is what the composition ends up with
    class_path = next(line.split(":", 1)[1].strip() for line in model.splitlines() if "class_path" in line)
    assert class_path in printed


def test_a_stale_key_is_caught(tmp_path):
    """The check has teeth: a config with an argument the class does not take is rejected."""
    stale = tmp_path / "stale.yaml"
    stale.write_text("model:\n  controller:\n    init_args:\n      update_gate_bias: 3.0\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "quickstart.yaml"), "--config", str(stale), "--print_config"])
    assert exit_info.value.code != 0


def test_no_shell_scripts_under_configs():
    """Batches of runs are suites (`memrl suite`), not shell scripts that rebuild its loop by hand."""
    assert not [p for p in CONFIGS.rglob("*") if p.suffix in (".sh", ".py")]


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.stem)
def test_suite_dry_runs_and_its_runs_parse(suite, monkeypatch):
    """Every shipped suite expands (dry run), and a run of each experiment and of each arm parses as fit reads it."""
    monkeypatch.chdir(CONFIGS.parent)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert suite_run.main(["--config", str(suite.relative_to(CONFIGS.parent)), "--dry-run"]) == 0
    runs = [run for run in load_suite(suite.relative_to(CONFIGS.parent)).runs() if run.seed == 0]
    experiments = list(dict.fromkeys((run.task, run.difficulty) for run in runs))
    arms = list(dict.fromkeys(run.controller.name for run in runs))
    for i in range(max(len(experiments), len(arms))):  # a diagonal: every experiment and every arm at least once
        cell, arm = experiments[i % len(experiments)], arms[i % len(arms)]
        run = next(r for r in runs if (r.task, r.difficulty) == cell and r.controller.name == arm)
        printed = suite_run.resolved_config(run)
        assert "class_path" in printed, f"{run.run_id} of {suite.name} did not parse:\n{printed}"


def test_the_solve_suites_differ_only_by_the_memory(monkeypatch):
    """`solve_gru` is the recipe with the memory taken out: the same grid, seeds, curriculum, PPO settings,
    scale and budget, so the table compares the memory and nothing else."""
    monkeypatch.chdir(CONFIGS.parent)
    recipe, bare = (load_suite(f"configs/suites/{name}.yaml").runs() for name in ("solve", "solve_gru"))
    assert [(r.task, r.difficulty, r.seed) for r in recipe] == [(r.task, r.difficulty, r.seed) for r in bare]
    nine = {run.task for run in load_suite("configs/suites/standard.yaml").runs()}  # the suite's tasks
    assert {(r.task, r.difficulty) for r in recipe} == {(task, "medium") for task in nine} | {
        (task, "hard") for task in ("delayed_cue", "copy_memory", "associative_recall", "t_maze")
    }
    memory_keys = {"memory", "memory_sees_input", "memory_clock"}
    for with_memory, without in zip(recipe, bare, strict=True):
        a, b = flatten(with_memory.merged_config()), flatten(without.merged_config())
        differ = {key for key in a.keys() | b.keys() if a.get(key) != b.get(key)}
        differ = {key for key in differ if not key.startswith(("trainer.default_root_dir", "trainer.logger"))}  # logs
        assert {key.split(".")[1] for key in differ if key.startswith("model.")} <= memory_keys, differ
        assert all(key.startswith("model.") for key in differ), differ
        assert b["model.memory"] is None and b["model.memory_clock"] == 0 and not b["model.memory_sees_input"]
