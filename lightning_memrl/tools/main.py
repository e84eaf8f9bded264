"""`memrl`: the command. Routes `fit / validate / test` to `MemRLCLI`, and the tools to their modules.

memrl fit --config configs/quickstart.yaml [--data.num_envs 512]
memrl test --config configs/quickstart.yaml --ckpt_path last
memrl suite [run|compare|plot|table] ...
memrl bench [throughput|controllers|envs|memory|episodic|mamba2_paths|learning] ...
memrl tune --config configs/x.yaml --search configs/search/x.yaml --n-trials 20   (needs the [tune] extra)
memrl export --ckpt_path runs/x/.../last.ckpt --format torch|onnx   (onnx needs the [export] extra)
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from lightning_memrl.errors import ConfigError, EnvError, MissingDependencyError, TrainingDivergedError
from lightning_memrl.tools.bench import BENCHMARKS

SUITE_COMMANDS = ("run", "compare", "plot", "table")
GYM_DEFAULT = Path(__file__).resolve().parents[2] / "configs" / "agents" / "gym_default.yaml"
RESUME_HINT = "the run's last checkpoint is intact: once the env is fixed, continue it with --ckpt_path last"
#: environment variable: "1" makes `memrl` exit when the process that started it is gone (`memrl suite` sets it)
STOP_WITH_PARENT = "MEMRL_STOP_WITH_PARENT"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `memrl` command; returns the exit status (2 for bad input, with one clear line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(STOP_WITH_PARENT) == "1":
        stop_with_parent()
    try:
        if args and args[0] in ("bench", "suite", "tune", "export"):
            return _run_tool(args)
        return _run_cli(args, from_argv=argv is None)
    except (ConfigError, MissingDependencyError, TrainingDivergedError) as err:
        print(f"memrl: error: {err}", file=sys.stderr)
        return 2
    except EnvError as err:
        if err.env_raised and err.__cause__ is not None:  # the env's own error: show where
            traceback.print_exception(err.__cause__)
        print(f"memrl: error: {err}", file=sys.stderr)
        print(f"memrl: {RESUME_HINT}", file=sys.stderr)
        return 1


def with_gym_default(args: list[str]) -> list[str]:
    """`fit / validate / test --data.env gym:<id>` without any `--config`: the args with the default gym
    agent's config first (`configs/agents/gym_default.yaml`, in a source checkout); else `args` as they are."""
    if not args or args[0] not in ("fit", "validate", "test") or not GYM_DEFAULT.is_file():
        return args
    if any(a in ("--config", "-c") or a.startswith("--config=") for a in args):
        return args
    env = next((b for a, b in zip(args, args[1:], strict=False) if a == "--data.env"), None)
    env = env or next((a.split("=", 1)[1] for a in args if a.startswith("--data.env=")), None)
    if env is None or not env.startswith("gym:"):
        return args
    return [args[0], "--config", str(GYM_DEFAULT), *args[1:]]


def stop_with_parent(period: float = 1.0) -> threading.Thread:
    """Exit (status 1) once the process that started this one is gone, checked every `period` seconds.

    A run of a killed `memrl suite` would otherwise go on writing into the run dir that the next
    `memrl suite` continues from its checkpoint. Its checkpoints are atomic, so stopping anywhere is safe.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period)
        print(f"memrl: the process that started this one (pid {parent}) is gone; stopping", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)

    thread = threading.Thread(target=watch, name="memrl-stop-with-parent", daemon=True)
    thread.start()
    return thread


def _run_cli(args: list[str], from_argv: bool) -> int:
    from lightning_memrl.callbacks.results import ResultsJson
    from lightning_memrl.cli import MemRLCLI

    with_default = with_gym_default(args)
    if with_default != args:
        print(f"memrl: a gym env without --config: using the default gym agent, --config {GYM_DEFAULT}")
        args, from_argv = with_default, False
    cli = MemRLCLI(args=None if from_argv else args)
    trainer = cli.trainer
    results = next((cb for cb in trainer.callbacks if isinstance(cb, ResultsJson)), None)
    if trainer.is_global_zero and results is not None and results.log_dir is not None:
        print(f"memrl: logs, checkpoints and results.json in {results.log_dir}")
    return 0


def _run_tool(args: list[str]) -> int:
    """`memrl bench NAME ...`, `memrl suite [SUB] ...`, `memrl tune ...`, `memrl export ...`: each module's main."""
    tool, rest = args[0], args[1:]
    if tool in ("tune", "export"):
        module = f"lightning_memrl.tools.{tool}"
    elif tool == "suite":
        sub = "run"
        if rest and rest[0] in SUITE_COMMANDS:
            sub, rest = rest[0], rest[1:]
        module = f"lightning_memrl.tools.suite.{sub}"
    else:
        name = rest[0] if rest and not rest[0].startswith("-") else "throughput"
        if rest and not rest[0].startswith("-"):
            rest = rest[1:]
        if name not in BENCHMARKS:
            raise ConfigError(f"no benchmark named {name!r}; choose from {', '.join(BENCHMARKS)}")
        module = f"lightning_memrl.tools.bench.{name}"
        from lightning_memrl.cli import hide_logging_service_tip  # lazily: `memrl --help` stays fast

        hide_logging_service_tip()  # benchmarks start their own Trainers
    return int(importlib.import_module(module).main(rest) or 0)
