"""The minimum versions of the packages lightning-memrl needs, checked when the package is imported.

An older one would otherwise fail deep inside an import (gymnasium 0.29, which some env packages pin,
dies with `cannot import name 'AutoresetMode' from 'gymnasium.vector'`); the check names the package, the
version found and the version needed first. `REQUIRED` mirrors `install_requires` in setup.cfg (a test
keeps them equal). Only package metadata is read: nothing is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from importlib import metadata

from lightning_memrl.errors import MissingDependencyError

#: distribution name -> minimum version (setup.cfg's install_requires)
REQUIRED = {
    "torch": "2.4",
    "lightning": "2.4",
    "jsonargparse": "4.27",
    "gymnasium": "1.1",
    "tensorboard": "2.14",
    "torchmetrics": "1.0",
    "numpy": "1.24",
}


def version_tuple(text: str) -> tuple[int, ...]:
    """`"2.13.0+cpu"` -> `(2, 13, 0)`: the leading numbers of a version, enough to compare with a minimum."""
    numbers = []
    for part in text.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
        if digits.end() < len(part):  # "0rc1", "0+cpu": the rest is a pre- or local release
            break
    return tuple(numbers)


def requirement_problems(
    required: Mapping[str, str] = REQUIRED, installed: Callable[[str], str] = metadata.version
) -> list[str]:
    """One line per required package that is missing or older than its minimum; `[]` when all are fine."""
    problems = []
    for name, minimum in required.items():
        try:
            found = installed(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}>={minimum} is not installed")
            continue
        if version_tuple(found) < version_tuple(minimum):
            problems.append(f"{name}>={minimum} is needed, but {name} {found} is installed")
    return problems


def check_requirements(
    required: Mapping[str, str] = REQUIRED, installed: Callable[[str], str] = metadata.version
) -> None:
    """`MissingDependencyError` naming every package that is missing or too old, and the command that fixes it."""
    problems = requirement_problems(required, installed)
    if not problems:
        return
    names = [line.split(">=")[0] for line in problems]
    fix = " ".join(f"'{name}>={required[name]}'" for name in names)
    raise MissingDependencyError(
        f"lightning-memrl: {'; '.join(problems)}. Run: pip install -U {fix} (a package pinning an older "
        "version, e.g. memory-gym's gymnasium 0.29, needs an environment of its own)"
    )
