"""`memrl suite`: the suite schema, dry-run, running a tiny grid, and resuming without re-running."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.suite import run as suite_module
from lightning_memrl.tools.suite.config import deep_merge, flatten, load_suite, nested, with_command_line
from lightning_memrl.tools.suite.plot import learning_curve
from lightning_memrl.tools.suite.records import machine_description, make_record
from lightning_memrl.tools.suite.run import main, read_records

REPO = Path(__file__).resolve().parents[3]
NINE_TASKS = {
    "delayed_cue",
    "copy_memory",
    "associative_recall",
    "n_back",
    "multi_cue_delay",
    "permuted_copy",
    "pattern_binding",
    "distractor_navigation",
    "t_maze",
}


def write_suite(path: Path, **changes) -> Path:
    suite = {
        "name": "tiny",
        "base_configs": [str(REPO / "configs" / "quickstart.yaml")],
        "root_dir": str(path.parent / "runs"),
        "tasks": ["delayed_cue"],
        "difficulties": ["easy"],
        "controllers": [
            {"name": "gru", "class_path": "lightning_memrl.controllers.GRU", "init_args": {"hidden_size": 16}}
        ],
        "seeds": 2,
        "overrides": {
            "data.num_envs": 16,
            "data.rollout_steps": 16,
            "data.seq_len": 16,
            "data.num_minibatches": 2,
            "data.update_epochs": 1,
            "data.eval_envs": 16,
            "data.eval_episodes": 16,
            "trainer.max_epochs": 2,
            "trainer.enable_progress_bar": False,
            "trainer.enable_model_summary": False,
        },
        "task_overrides": {"delayed_cue": {"data.env_kwargs": {"horizon": 8, "num_cues": 2}}},
    }
    suite.update(changes)
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@pytest.fixture
def tiny_suite(tmp_path):
    return write_suite(tmp_path / "tiny.yaml")


# --- schema ---------------------------------------------------------------------------------------
def test_shipped_suites_cover_the_nine_tasks(monkeypatch):
    monkeypatch.chdir(REPO)
    quick = load_suite("configs/suites/quick.yaml")
    runs = quick.runs()
    assert {r.task for r in runs} == NINE_TASKS and len(runs) == 9
    assert {(r.difficulty, r.controller.name, r.seed) for r in runs} == {("easy", "gru", 0)}

    standard = load_suite("configs/suites/standard.yaml")
    runs = standard.runs()
    assert len(runs) == 9 * 2 * 2 * 3
    assert {r.controller.name for r in runs} == {"gru", "lstm"} and {r.seed for r in runs} == {0, 1, 2}
    medium = next(r for r in runs if r.difficulty == "medium").merged_config()
    assert medium["data"]["seq_len"] == 256 and medium["trainer"]["max_epochs"] == 64
    assert medium["model"]["controller"]["class_path"] == "lightning_memrl.controllers.GRU"


def test_run_config_layers_overrides_then_the_grid(tmp_path):
    path = write_suite(
        tmp_path / "s.yaml",
        difficulty_overrides={"easy": {"trainer.max_epochs": 3}},
        controllers=["lightning_memrl.controllers.LSTM"],
    )
    run = load_suite(path).runs()[1]
    assert run.run_id == "delayed_cue/easy/lstm/seed1"
    assert run.run_dir == tmp_path / "runs" / "delayed_cue" / "easy" / "lstm" / "seed1"
    config = run.merged_config()
    assert config["trainer"]["max_epochs"] == 3  # difficulty_overrides over overrides
    assert config["data"]["num_envs"] == 16 and config["data"]["seed"] == 1
    assert config["data"]["env"] == "delayed_cue" and config["data"]["difficulty"] == "easy"
    assert config["model"]["controller"] == {"class_path": "lightning_memrl.controllers.LSTM"}
    assert config["trainer"]["logger"]["init_args"]["save_dir"] == str(run.run_dir)
    assert config["model"]["lr"] == 0.001  # from the base config
    assert run.horizon() == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 3}, "unknown key"),
        ({"difficulties": ["impossible"]}, "unknown difficulty"),
        ({"tasks": []}, "non-empty list `tasks`"),
        ({"controllers": ["a.GRU", "b.GRU"]}, "names repeat"),
        ({"controllers": [{"init_args": {}}]}, "class path"),
        ({"overrides": {"data.seed": 3}}, "the grid sets"),
        ({"task_overrides": {"delayed_cue": {"model": {"controller": {"class_path": "x.Y"}}}}}, "the grid sets"),
        ({"base_configs": ["nowhere.yaml"]}, "not found"),
        ({"seeds": ["a"]}, "seeds"),
    ],
)
def test_bad_suites_are_config_errors(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        load_suite(write_suite(tmp_path / "s.yaml", **changes))


def test_filters_select_runs(tmp_path):
    runs = load_suite(write_suite(tmp_path / "s.yaml", difficulties=["easy", "medium"], seeds=3)).runs()
    assert len(runs) == 6
    assert [r.seed for r in runs if r.matches(["difficulty=medium", "seed=0,2"])] == [0, 2]
    assert [r.run_id for r in runs if r.matches(["*/easy/*/seed1"])] == ["delayed_cue/easy/gru/seed1"]
    with pytest.raises(ConfigError, match="unknown filter key"):
        runs[0].matches(["colour=red"])


_names = st.text("abcdefgh_", min_size=1, max_size=4)
_trees = st.recursive(
    st.integers() | st.booleans() | st.text(max_size=3),
    lambda children: st.dictionaries(_names, children, min_size=1, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(_names, _trees, min_size=1, max_size=4))
def test_dotted_and_nested_overrides_are_the_same_config(tree):
    assert nested(flatten(tree)) == tree
    assert deep_merge(tree, {}) == tree and deep_merge({}, tree) == tree


@given(st.dictionaries(_names, _trees, max_size=3), st.dictionaries(_names, _trees, max_size=3))
def test_deep_merge_sets_every_leaf_of_the_update(base, update):
    merged = flatten(deep_merge(base, update))
    for key, value in flatten(update).items():
        assert merged[key] == value


# --- dry-run --------------------------------------------------------------------------------------
def test_dry_run_lists_runs_and_configs_and_writes_nothing(tiny_suite, capsys):
    assert main(["--config", str(tiny_suite), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[todo] delayed_cue/easy/gru/seed0  horizon=8" in out
    assert "[todo] delayed_cue/easy/gru/seed1" in out
    assert "command: fit --config " in out and "suite_run.yaml" in out
    assert "max_epochs: 2" in out and "hidden_size: 16" in out
    assert "2 runs: 0 done, 2 to run" in out
    assert not (tiny_suite.parent / "runs").exists()


def test_dry_run_print_config_shows_the_complete_resolved_config(tiny_suite, capsys):
    assert main(["--config", str(tiny_suite), "--dry-run", "--print-config", "--filter", "seed=1"]) == 0
    out = capsys.readouterr().out
    assert "gae_lambda: 0.95" in out  # a default nobody set, filled in by memrl fit's parser
    assert "horizon: 8" in out and "seed: 1" in out
    assert not (tiny_suite.parent / "runs").exists()


def test_dry_run_flags_unregistered_tasks(tmp_path, capsys):
    path = write_suite(tmp_path / "s.yaml", tasks=["delayed_cue", "no_such_task"], task_overrides={})
    assert main(["--config", str(path), "--dry-run"]) == 2
    assert "not registered: no_such_task" in capsys.readouterr().out


# --- running and resuming -------------------------------------------------------------------------
def test_suite_runs_records_and_resumes_without_rerunning(tmp_path, monkeypatch, capsys):
    tiny_suite = write_suite(tmp_path / "tiny.yaml", seeds=[0])
    results = tmp_path / "out.jsonl"
    args = ["--config", str(tiny_suite), "--results", str(results), "--in-process"]
    assert main(args) == 0
    (first,) = read_records(results)
    assert first["run_id"] == "delayed_cue/easy/gru/seed0" and first["seed"] == 0
    assert first["task"] == "delayed_cue" and first["difficulty"] == "easy" and first["controller"] == "gru"
    assert first["horizon"] == 8 and first["env_steps"] == 2 * 16 * 16
    assert 0.0 <= first["success"] <= 1.0 and first["wall_s"] > 0
    # where it came from, written by code: this checkout's commit, and the machine with its accelerator
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert first["git_commit"].split("+")[0] == head.stdout.strip()
    assert first["machine"] == machine_description("cpu") and f"{os.cpu_count()} cores" in first["machine"]
    run_dir = Path(first["log_dir"])
    assert json.loads((run_dir / "results.json").read_text())["success_rate"] == first["success"]
    steps, success = learning_curve(run_dir)  # the TensorBoard tags the plots read exist
    assert steps == [256.0, 512.0] and len(success) == 2

    # a second pass skips the run: nothing is executed
    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was executed again")

    monkeypatch.setattr(suite_module, "execute", must_not_run)
    capsys.readouterr()
    assert main(args) == 0
    assert "done, skipped" in capsys.readouterr().out
    assert len(read_records(results)) == 1

    # a run finished in its dir but missing from the results file is collected, not re-run
    results.write_text("")
    assert main(args) == 0
    (collected,) = read_records(results)
    assert {k: v for k, v in collected.items() if k != "finished_at"} == {
        k: v for k, v in first.items() if k != "finished_at"
    }

    # a changed config is a new run: it runs again in a fresh dir, the old dir is kept aside
    monkeypatch.undo()
    suite = yaml.safe_load(tiny_suite.read_text())
    suite["overrides"]["trainer.max_epochs"] = 1
    tiny_suite.write_text(yaml.safe_dump(suite))
    capsys.readouterr()
    assert main(args) == 0
    assert "config changed" in capsys.readouterr().out
    rerun = read_records(results)[-1]
    assert rerun["run_id"] == first["run_id"] and rerun["env_steps"] == 256
    assert rerun["config_hash"] != first["config_hash"]
    assert run_dir.with_name("seed0.stale1").is_dir() and (run_dir / "results.json").exists()

    # a run interrupted before its results.json continues from its last checkpoint
    (run_dir / "results.json").unlink()
    results.write_text("")
    assert main(args) == 0
    assert f"--ckpt_path {run_dir / 'checkpoints' / 'last.ckpt'}" in (run_dir / "fit.log").read_text()
    assert read_records(results)[0]["env_steps"] == 256


def test_a_failed_run_is_reported_and_the_suite_goes_on(tiny_suite, capsys):
    suite = yaml.safe_load(tiny_suite.read_text())
    suite["task_overrides"] = {"delayed_cue": {"data.env_kwargs": {"horizon": 1}}}  # invalid: horizon >= 2
    tiny_suite.write_text(yaml.safe_dump(suite))
    results = tiny_suite.parent / "out.jsonl"
    assert main(["--config", str(tiny_suite), "--results", str(results), "--in-process"]) == 1
    assert "FAILED" in capsys.readouterr().err
    assert read_records(results) == []


def test_config_hash_ignores_where_a_run_logs(tmp_path):
    """Results recorded under another root dir (another machine) still mark the same runs as finished."""
    suite = load_suite(write_suite(tmp_path / "s.yaml", seeds=[0, 1]))
    here, there = suite.runs(tmp_path / "a"), suite.runs(tmp_path / "b")
    assert [r.run_dir for r in here] != [r.run_dir for r in there]
    assert [r.config_hash for r in here] == [r.config_hash for r in there]
    assert len({r.config_hash for r in here}) == 2  # the seed is part of what a run is


def test_records_keep_what_a_curriculum_reached(tiny_suite):
    run = load_suite(str(tiny_suite)).runs()[0]
    result = {"success_rate": 0.5, "return_mean": 0.5, "env_steps": 100, "wall_s": 1.0, "sps": 100.0}
    curriculum = {
        "target_success": 0.95,
        "env_steps_to_target": None,
        "wall_s_to_target": None,
        "curriculum_stage": 3,
        "curriculum_stages": 9,
        "curriculum_task": {"horizon": 22, "num_cues": 8},
        "curriculum_success": 0.4,
    }
    record = make_record(run, {**result, **curriculum})
    assert {key: record[key] for key in curriculum} == curriculum
    assert "curriculum_stage" not in make_record(run, result)


def test_set_and_variant_change_every_run_over_every_override_section(tmp_path):
    path = write_suite(tmp_path / "s.yaml", difficulty_overrides={"easy": {"trainer.max_epochs": 3}})
    suite = with_command_line(load_suite(path), ["trainer.max_epochs=7", "model.lr=0.0003"], variant="slow")
    run = suite.runs()[0]
    config = run.merged_config()
    assert config["trainer"]["max_epochs"] == 7  # over difficulty_overrides
    assert config["model"]["lr"] == 0.0003 and config["data"]["num_envs"] == 16  # the suite's other keys stay
    assert run.run_id == "delayed_cue/easy/gru-slow/seed0" and run.run_dir.parent.name == "gru-slow"
    assert run.config_hash != load_suite(path).runs()[0].config_hash


@pytest.mark.parametrize(
    ("sets", "variant", "message"),
    [(["data.num_envs"], None, "KEY=VALUE"), (["data.seed=3"], None, "--filter"), ([], "a/b", "without '/'")],
)
def test_bad_set_and_variant_are_config_errors(tiny_suite, sets, variant, message):
    with pytest.raises(ConfigError, match=message):
        with_command_line(load_suite(tiny_suite), sets, variant)


def test_the_command_line_sets_reach_the_dry_run(tiny_suite, capsys):
    assert main(["--config", str(tiny_suite), "--dry-run", "--set", "data.num_envs=32", "--variant", "wide"]) == 0
    out = capsys.readouterr().out
    assert "[todo] delayed_cue/easy/gru-wide/seed0" in out and "num_envs: 32" in out
