"""The suite's results file: one JSON line per finished run, with the commit and machine that made it.

A record holds what a run reached (`success`, `return`, `env_steps`, `wall_s`, `sps`, and where the
run's `results.json` has them, a curriculum's `env_steps_to_target` / `wall_s_to_target` and the stage it
reached), what it was (`task`, `difficulty`, `controller`, `seed`, `horizon`, `config_hash`) and where it
came from (`git_commit`, `machine`, `finished_at`, `log_dir`). Every field is written here, by code; none
is added by hand.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import lightning_memrl
from lightning_memrl.errors import ConfigError
from lightning_memrl.tools.suite.config import SuiteRun

# what a curriculum adds to `results.json` (`TaskCurriculum.results_fields`): time to target, how far it got
CURRICULUM_FIELDS = (
    "env_steps_to_target",
    "wall_s_to_target",
    "target_success",
    "curriculum_stage",
    "curriculum_stages",
    "curriculum_task",
    "curriculum_success",
)


def make_record(run: SuiteRun, result: dict[str, Any], jobs: int = 1, threads: int | None = None) -> dict[str, Any]:
    """One JSON line of the results file, from a run and its `results.json`.

    `jobs` and `threads` describe how the suite ran it (runs at once, threads each), part of `machine`.
    """
    try:
        horizon = run.horizon()
    except ConfigError:
        horizon = None
    record = {
        "suite": run.suite,
        "run_id": run.run_id,
        "task": run.task,
        "difficulty": run.difficulty,
        "controller": run.controller.name,
        "controller_class": run.controller.class_path,
        "seed": run.seed,
        "horizon": horizon,
        "success": result["success_rate"],
        "return": result["return_mean"],
        "env_steps": result["env_steps"],
        "wall_s": result["wall_s"],
        "sps": result.get("sps"),
    }
    for key in CURRICULUM_FIELDS:
        if key in result:
            record[key] = result[key]
    record.update(
        {
            "git_commit": git_commit(),
            "machine": machine_description(result.get("device"), jobs=jobs, threads=threads),
            "log_dir": str(run.run_dir),
            "config_hash": run.config_hash,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    )
    return record


def machine_description(device: str | None = None, jobs: int = 1, threads: int | None = None) -> str:
    """What ran a record: CPU model and cores, the accelerator (`device` of the run's `results.json`),
    and how many runs shared the machine."""
    cpu = _cpu_model() or platform.machine()
    text = f"{cpu}, {os.cpu_count()} cores"
    if device and device != "cpu":
        text += f", {device}"
    share = f"{jobs} runs at once" if jobs > 1 else "one run at a time"
    if threads is not None:
        share += f", {threads} thread{'s' if threads != 1 else ''} each"
    return f"{text}; {share}"


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines results file (none if it does not exist); names the bad line.

    A last line without its newline is a record cut short by a crash while it was written: it is left
    out with a warning (its run's `results.json` records it again), not an error.
    """
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    records = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines) and not text.endswith("\n"):
                print(f"memrl suite: {path}:{number} was cut short (a crash while writing it)", file=sys.stderr)
                continue
            raise ConfigError(f"{path}:{number} is not a JSON line ({err}); remove or fix that line") from err
    return records


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line and flush it to disk (an interrupted suite keeps it).

    A last line cut short by a crash (no newline) is dropped first, so the new record starts a line.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab+") as handle:
        _drop_partial_line(handle)
        handle.write((json.dumps(record) + "\n").encode())
        handle.flush()
        os.fsync(handle.fileno())


def _drop_partial_line(handle: BinaryIO) -> None:
    """Truncate an open (`ab+`) file after its last newline."""
    handle.seek(0)
    text = handle.read()
    if text and not text.endswith(b"\n"):
        handle.truncate(text.rfind(b"\n") + 1)


def is_finished(run: SuiteRun, records: list[dict[str, Any]]) -> bool:
    """Whether the results hold this run with the same config."""
    return any(r.get("run_id") == run.run_id and r.get("config_hash") == run.config_hash for r in records)


def git_commit() -> str | None:
    """Commit of the lightning_memrl checkout (`+dirty` with uncommitted changes); None outside git."""
    where = Path(lightning_memrl.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")
