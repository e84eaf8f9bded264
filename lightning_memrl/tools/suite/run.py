"""`memrl suite`: run a grid of `memrl fit` runs, compare results with a baseline, plot them.

    memrl suite --config configs/suites/quick.yaml [--dry-run] [--results out.jsonl] [--filter task=delayed_cue]
    memrl suite --config configs/suites/standard.yaml --jobs 16    # 16 runs at once, one thread each
    memrl suite compare --results A.jsonl --baseline B.jsonl [--tolerance 0.05]
    memrl suite plot --results A.jsonl [--logs runs/suites/quick] --out plots/

Each run is a `memrl fit` in a subprocess (`python -m lightning_memrl fit ...`) with its own log dir
`<root_dir>/<task>/<difficulty>/<controller>/seed<k>`: a run that crashes, diverges or runs out of
memory is reported and the suite goes on; every run starts from a fresh process (global seeds,
threads, memory), and its exact command is printed and logged to `fit.log` in its dir.
`--in-process` runs each fit inside this process instead (faster start, used by tests).
`--jobs N` runs N subprocess fits at once, each with `--threads` intra-op threads (default: the
machine's cores divided by N, at least 1): set through OMP_NUM_THREADS / MKL_NUM_THREADS in the
child, since concurrent torch processes that each spin all cores slow one another down badly.
After a run, its `results.json` (written by the `ResultsJson` callback) becomes one JSON line of
`--results` (default `<root_dir>/results.jsonl`): `task`, `difficulty`, `controller`, `seed`,
`horizon`, `success`, `return`, `env_steps`, `wall_s`, `sps`, `git_commit`, `run_id`, `log_dir`,
`config_hash`. Re-running the suite skips runs already in the results file with the same config
hash, so an interrupted suite resumes; a run stopped mid-fit continues from its `last.ckpt`
(its `wall_s` then counts only the resumed part). A run whose config changed gets a fresh dir
(the old one is renamed `seed<k>.stale<n>`).

Suite YAML schema (paths relative to the working directory, as for `memrl fit --config`):

    name: quick                       # default: the file's stem
    description: ...                  # free text
    base_configs: [configs/x.yaml]    # passed first as --config, in order (a string or a list)
    root_dir: runs/suites/quick       # default: runs/suites/<name>
    tasks: [delayed_cue, copy_memory] # registered task names
    difficulties: [easy, medium]      # presets of the task registry
    controllers:                      # class paths, or mappings with class_path / init_args / name
      - lightning_memrl.controllers.GRU                  # name: "gru" (lower-cased class name)
      - {name: lstm256, class_path: lightning_memrl.controllers.LSTM, init_args: {hidden_size: 256}}
    seeds: 3                          # a count (0, 1, 2) or a list of integers
    overrides:                        # config keys (dotted or nested) for every run
      trainer.max_epochs: 100
    difficulty_overrides:             # per difficulty: the budget (max_epochs) and its BPTT window
      medium: {trainer.max_epochs: 300, data.rollout_steps: 256, data.seq_len: 256}
    task_overrides:                   # per task, or per `task/difficulty`, applied last
      n_back: {data.gamma: 0.9}

Each run's config is the base configs, then `overrides`, `difficulty_overrides[d]`,
`task_overrides[t]`, `task_overrides[t/d]`, the command line's `--set KEY=VALUE`, then the grid's own keys (`data.env`,
`data.difficulty`, `data.seed`, `model.controller`, `trainer.default_root_dir`, `trainer.logger`),
which the override sections may not set. `--dry-run` lists every run with its status, command and
this merged config, and checks that every task is registered; `--print-config` instead asks
`memrl fit --print_config` for the complete resolved config of each run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

import lightning_memrl
from lightning_memrl.envs.registry import get_task_spec
from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.main import STOP_WITH_PARENT
from lightning_memrl.tools.suite.config import SuiteRun, is_gym_task, load_suite, with_command_line
from lightning_memrl.tools.suite.records import append_record, is_finished, make_record, read_records

RESULTS_FILE = "results.json"


def main(argv: Sequence[str] | None = None) -> int:
    """`memrl suite [run] --config ...`: dry-run or run the grid. Returns 0, 1 (some run failed) or 2 (bad config)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "run":
        args = args[1:]
    return run_main(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="memrl suite",
        description="Run a grid of memrl fit runs (subcommands: compare, plot; see `memrl suite compare -h`).",
    )
    parser.add_argument("--config", required=True, help="suite YAML file (configs/suites/*.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their configs; train nothing")
    parser.add_argument("--print-config", action="store_true", help="dry-run showing the complete resolved configs")
    parser.add_argument("--results", help="JSON-lines results file (default: <root_dir>/results.jsonl)")
    parser.add_argument("--root-dir", help="log root of the runs (default: the suite's root_dir)")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        help="keep runs matching key=glob[,glob] (task, difficulty, controller, seed) or a run-id glob; repeatable",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config key for every run, over every override section of the suite (value read as YAML), e.g. --set "
        "data.num_envs=512; repeatable",
    )
    parser.add_argument(
        "--variant",
        metavar="NAME",
        help="append -NAME to every arm's name: a variant made with --set gets its own runs and table rows",
    )
    parser.add_argument("--in-process", action="store_true", help="run each fit in this process, not a subprocess")
    parser.add_argument("--jobs", type=_positive_int, default=1, help="subprocess runs at once (default 1)")
    parser.add_argument("--threads", type=_positive_int, help="torch threads per run (default: cores // jobs)")
    parser.add_argument(
        "--gpus",
        nargs="+",
        metavar="ID",
        help="CUDA device ids the subprocess runs take in turn (CUDA_VISIBLE_DEVICES per run), e.g. --gpus 0 1",
    )
    parser.add_argument(
        "--max-time",
        metavar="DD:HH:MM:SS",
        help="wall-clock stop of every run (trainer.max_time); a run stopped by it is recorded with what it reached",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def run_main(argv: Sequence[str]) -> int:
    """`memrl suite --config ...`: dry-run or run the grid. Returns 0, 1 (some run failed) or 2 (bad config)."""
    opts = _parser().parse_args(argv)
    suite = with_command_line(load_suite(opts.config), opts.set, opts.variant)
    runs = [run for run in suite.runs(opts.root_dir) if run.matches(opts.filter)]
    if not runs:
        raise ConfigError(f"no run of suite {suite.name!r} matches the filters {opts.filter}")
    root = Path(opts.root_dir) if opts.root_dir else suite.root_dir
    results = Path(opts.results) if opts.results else root / "results.jsonl"
    recorded = read_records(results)
    if opts.dry_run or opts.print_config:
        return dry_run(runs, recorded, sys.stdout, full_config=opts.print_config)
    _check_tasks(runs)
    if opts.jobs > 1 and opts.in_process:
        raise ConfigError("--jobs runs subprocesses; it cannot be combined with --in-process")
    if opts.gpus and opts.in_process:
        raise ConfigError("--gpus assigns devices to subprocess runs; it cannot be combined with --in-process")
    threads = opts.threads or (max(1, (os.cpu_count() or 1) // opts.jobs) if opts.jobs > 1 else None)
    launch = Launch(in_process=opts.in_process, threads=threads, gpus=tuple(opts.gpus or ()), max_time=opts.max_time)
    failures = 0
    todo: list[tuple[str, SuiteRun]] = []
    for index, run in enumerate(runs, 1):
        prefix = f"[{index}/{len(runs)}] {run.run_id}"
        if is_finished(run, recorded):
            print(f"{prefix}: done, skipped")
            continue
        record = _collect_finished(run, jobs=opts.jobs, threads=threads)
        if record is not None:
            _record(results, recorded, prefix, record)
            continue
        todo.append((prefix, run))

    def attempt(prefix: str, run: SuiteRun, gpu: str | None) -> dict[str, Any] | None:
        where = f" on GPU {gpu}" if gpu is not None else ""
        print(f"{prefix}: running in {run.run_dir}{where}\n", end="", flush=True)  # one write: threads print too
        ok = execute(run, launch, gpu=gpu)
        return _collect_finished(run, jobs=opts.jobs, threads=threads) if ok else None

    with ThreadPoolExecutor(max_workers=opts.jobs) as pool:  # threads only wait on subprocesses
        futures = {
            pool.submit(attempt, prefix, run, launch.gpu(number)): (prefix, run)
            for number, (prefix, run) in enumerate(todo)
        }
        for future in as_completed(futures):
            prefix, run = futures[future]
            record = future.result()
            if record is None:
                failures += 1
                print(f"{prefix}: FAILED (see {run.run_dir / 'fit.log'})", file=sys.stderr)
                continue
            _record(results, recorded, prefix, record)  # only this thread writes the results file
    print(f"memrl suite: {len(runs) - failures}/{len(runs)} runs recorded in {results}")
    return 1 if failures else 0


def _record(results: Path, recorded: list[dict[str, Any]], prefix: str, record: dict[str, Any]) -> None:
    append_record(results, record)
    recorded.append(record)
    print(f"{prefix}: success {record['success']:.3f}  env_steps {record['env_steps']}  {record['wall_s']:.1f} s")


# --- listing ----------------------------------------------------------------------------------------
def dry_run(runs: list[SuiteRun], recorded: list[dict[str, Any]], out: TextIO, full_config: bool = False) -> int:
    """Print every run (status, horizon, log dir, command, config) without training.

    Returns 2 when a task is not registered (so a typo fails before hours of training), else 0.
    """
    unknown: set[str] = set()
    done = 0
    for run in runs:
        finished = is_finished(run, recorded)
        done += finished
        horizon: Any = run.horizon() if _registered(run.task) else "?"
        if horizon == "?":
            unknown.add(run.task)
        status = "done" if finished else "todo"
        print(f"[{status}] {run.run_id}  horizon={horizon}  config_hash={run.config_hash}  dir={run.run_dir}", file=out)
        print(f"  command: {' '.join(fit_command(run))}", file=out)
        config = resolved_config(run) if full_config else run.merged_config()
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        print("  " + text.rstrip().replace("\n", "\n  "), file=out)
    print(f"{len(runs)} runs: {done} done, {len(runs) - done} to run", file=out)
    if unknown:
        print(f"not registered: {', '.join(sorted(unknown))} (see lightning_memrl.envs.task_names())", file=out)
        return 2
    return 0


def _check_tasks(runs: list[SuiteRun]) -> None:
    unknown = {run.task for run in runs if not _registered(run.task)}
    if unknown:
        raise ConfigError(f"suite tasks not registered: {sorted(unknown)}; fix the suite's tasks or --filter them out")


def _registered(task: str) -> bool:
    if is_gym_task(task):
        return True  # resolved by gymnasium when the run starts
    try:
        get_task_spec(task)
    except ConfigError:
        return False
    return True


def fit_command(run: SuiteRun, ckpt_path: Path | None = None) -> list[str]:
    """Arguments of `memrl` for the run (after `memrl`)."""
    args = ["fit"]
    for config in run.base_configs:
        args += ["--config", config]
    args += ["--config", str(run.run_config_path)]
    if ckpt_path is not None:
        args += ["--ckpt_path", str(ckpt_path)]
    return args


def resolved_config(run: SuiteRun) -> str:
    """The complete config `memrl fit` would run with (jsonargparse's `--print_config`)."""
    from lightning_memrl.cli import MemRLCLI

    with _temporary_file(run.run_config_path, yaml.safe_dump(run.overrides, sort_keys=False)):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
            MemRLCLI(args=[*fit_command(run), "--print_config"])  # prints and exits before fitting
    return buffer.getvalue()


@contextlib.contextmanager
def _temporary_file(path: Path, text: str):
    """Write `path` for the duration of the block, then restore what was there (dirs included)."""
    previous = path.read_text() if path.exists() else None
    created = [d for d in reversed(path.parents) if not d.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    try:
        yield path
    finally:
        if previous is not None:
            path.write_text(previous)
        else:
            path.unlink()
            for directory in reversed(created):
                directory.rmdir()


# --- running ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Launch:
    """How the suite starts its runs (none of it is part of a run's config hash).

    Attributes:
        in_process: fit inside this process instead of a subprocess.
        threads: intra-op threads of each subprocess (OMP_NUM_THREADS / MKL_NUM_THREADS), None: torch's default.
        gpus: CUDA device ids that subprocess runs take in turn; empty: the children see every device.
        max_time: `trainer.max_time` of every run (`DD:HH:MM:SS`), None: the config's.
    """

    in_process: bool = False
    threads: int | None = None
    gpus: tuple[str, ...] = ()
    max_time: str | None = None

    def gpu(self, number: int) -> str | None:
        """The device of the `number`-th launched run (round robin), None without `gpus`."""
        return self.gpus[number % len(self.gpus)] if self.gpus else None


def execute(run: SuiteRun, launch: Launch = Launch(), gpu: str | None = None) -> bool:
    """Run one `memrl fit` (resuming from its `last.ckpt` when a previous attempt stopped mid-run)."""
    _prepare_dir(run)
    last = run.run_dir / "checkpoints" / "last.ckpt"
    args = fit_command(run, last if last.exists() else None)
    if launch.max_time is not None:
        args += ["--trainer.max_time", launch.max_time]
    log = run.run_dir / "fit.log"
    with log.open("a") as handle:
        handle.write(f"$ memrl {' '.join(args)}\n")
    if launch.in_process:
        from lightning_memrl.tools.main import main as memrl_main

        try:
            return memrl_main(args) == 0
        except Exception as err:  # one failed run must not end the suite
            with log.open("a") as handle:
                handle.write(f"memrl suite: in-process run failed: {err!r}\n")
            print(f"{run.run_id}: {err!r}", file=sys.stderr)
            return False
    env = dict(os.environ)
    package_root = str(Path(lightning_memrl.__file__).resolve().parent.parent)  # children import this checkout
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    if launch.threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(launch.threads)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    env[STOP_WITH_PARENT] = "1"  # a run does not outlive its suite (the next suite continues it)
    with log.open("a") as handle:
        proc = subprocess.run([sys.executable, "-m", "lightning_memrl", *args], stdout=handle, stderr=handle, env=env)
    return proc.returncode == 0


def _prepare_dir(run: SuiteRun) -> None:
    """Write the run's config file; move a dir left by a different config out of the way."""
    header = f"# memrl suite {run.suite} run {run.run_id}, config_hash: {run.config_hash}\n"
    if run.run_dir.exists() and _dir_hash(run) != run.config_hash:
        n = 1
        while (stale := run.run_dir.with_name(f"{run.run_dir.name}.stale{n}")).exists():
            n += 1
        run.run_dir.rename(stale)
        print(f"{run.run_id}: the config changed since {run.run_dir} was made; old dir moved to {stale}")
    run.run_dir.mkdir(parents=True, exist_ok=True)
    run.run_config_path.write_text(header + yaml.safe_dump(run.overrides, sort_keys=False))


def _dir_hash(run: SuiteRun) -> str | None:
    if not run.run_config_path.exists():
        return None
    first = run.run_config_path.read_text().split("\n", 1)[0]
    return first.rsplit("config_hash: ", 1)[-1].strip() if "config_hash: " in first else None


def _collect_finished(run: SuiteRun, jobs: int = 1, threads: int | None = None) -> dict[str, Any] | None:
    """The record of a run whose dir holds a `results.json` of a finished fit with this config."""
    path = run.run_dir / RESULTS_FILE
    if not path.exists() or _dir_hash(run) != run.config_hash:
        return None
    result = json.loads(path.read_text())
    if result.get("stage") != "fit":
        return None
    return make_record(run, result, jobs=jobs, threads=threads)


if __name__ == "__main__":
    sys.exit(main())
