"""Run `memrl` in a child process that may be killed, cheaply: children fork from a server that imported the
CLI once (multiprocessing's forkserver), so each costs no Python start-up or `import lightning`."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from pathlib import Path

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["lightning_memrl.cli", "lightning_memrl.tools.main", "tests.reliability.faults"])


def run_memrl(args: Sequence[str], log: Path, env: dict[str, str] | None = None, timeout: float = 180) -> int:
    """`memrl ARGS` in a child process; its exit code (`-9` when it was killed with SIGKILL).

    Args:
        args: the arguments after `memrl`.
        log: file that receives the child's stdout and stderr.
        env: environment variables set in the child (e.g. `TMPDIR`).
        timeout: seconds before the child is killed and `TimeoutError` raised.
    """
    child = _CONTEXT.Process(target=_memrl_main, args=(list(args), str(log), dict(env or {})))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        raise TimeoutError(f"memrl {' '.join(args)} did not finish in {timeout} s; see {log}")
    return child.exitcode


def _memrl_main(args: list[str], log: str, env: dict[str, str]) -> None:
    import tempfile

    import torch

    from lightning_memrl.tools.main import main

    os.environ.update(env)
    tempfile.tempdir = None  # read TMPDIR again
    torch.set_num_threads(1)
    with open(log, "a") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        sys.exit(main(args))
