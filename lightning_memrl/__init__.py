"""lightning-memrl: memory-augmented reinforcement learning for PyTorch Lightning."""

import sys
from pathlib import Path

from lightning_memrl.errors import MissingDependencyError
from lightning_memrl.requirements import check_requirements

__version__ = "0.1.0"


def _is_the_memrl_command() -> bool:
    """Whether this process is `memrl` / `python -m lightning_memrl` (which reports errors in one line)."""
    argv = list(getattr(sys, "orig_argv", []))
    by_module = "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "lightning_memrl"
    return by_module or Path(sys.argv[0]).name == "memrl"


try:  # before any import of a required package that an old version would break
    check_requirements()
except MissingDependencyError as err:
    if not _is_the_memrl_command():
        raise
    print(f"memrl: error: {err}", file=sys.stderr)
    sys.exit(2)
