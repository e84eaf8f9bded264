"""A required package older than needed is named, with the version found and the one needed, before any
import it would break (gymnasium 0.29, pinned by memory-gym, used to end every command with
`cannot import name 'AutoresetMode'`)."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_memrl.errors import MissingDependencyError
from lightning_memrl.requirements import REQUIRED, check_requirements, requirement_problems, version_tuple

ROOT = Path(__file__).resolve().parents[2]


def _old_gymnasium(where: Path) -> Path:
    """A gymnasium 0.29.1 stand-in (package + metadata) without `gymnasium.vector.AutoresetMode`."""
    (where / "gymnasium" / "vector").mkdir(parents=True)
    (where / "gymnasium" / "__init__.py").write_text('__version__ = "0.29.1"\n')
    (where / "gymnasium" / "vector" / "__init__.py").write_text("")
    info = where / "gymnasium-0.29.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gymnasium\nVersion: 0.29.1\n")
    return where


@pytest.mark.parametrize("command", [["-m", "lightning_memrl", "fit", "--help"], ["-m", "lightning_memrl", "suite"]])
def test_memrl_with_an_old_gymnasium_says_which_version_it_needs(command, tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{_old_gymnasium(tmp_path)}{os.pathsep}{ROOT}"}
    proc = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "gymnasium>=1.1 is needed, but gymnasium 0.29.1 is installed" in proc.stderr
    assert "pip install -U 'gymnasium>=1.1'" in proc.stderr
    assert "AutoresetMode" not in proc.stderr and "Traceback" not in proc.stderr


def test_importing_the_package_with_an_old_gymnasium_raises_the_same_message(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{_old_gymnasium(tmp_path)}{os.pathsep}{ROOT}"}
    code = "import lightning_memrl.envs"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("lightning_memrl.errors.MissingDependencyError: ")
    assert "gymnasium>=1.1 is needed, but gymnasium 0.29.1 is installed" in proc.stderr


def test_every_missing_or_old_package_is_listed_with_the_fix():
    versions = {"torch": "2.13.0+cpu", "gymnasium": "0.29.1", "numpy": "1.26.4"}

    def installed(name):
        if name not in versions:
            from importlib.metadata import PackageNotFoundError

            raise PackageNotFoundError(name)
        return versions[name]

    required = {"torch": "2.4", "gymnasium": "1.1", "numpy": "1.24", "lightning": "2.4"}
    assert requirement_problems(required, installed) == [
        "gymnasium>=1.1 is needed, but gymnasium 0.29.1 is installed",
        "lightning>=2.4 is not installed",
    ]
    with pytest.raises(MissingDependencyError, match=r"pip install -U 'gymnasium>=1.1' 'lightning>=2.4'"):
        check_requirements(required, installed)
    check_requirements()  # this environment is fine


def test_versions_compare_by_their_leading_numbers():
    assert version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert version_tuple("1.1.0rc1") == (1, 1, 0)
    assert version_tuple("0.29.1") < version_tuple("1.1") <= version_tuple("1.1.0") < version_tuple("1.10")


def test_the_checked_minimums_are_setup_cfg_install_requires():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = [line.strip() for line in parser["options"]["install_requires"].splitlines() if line.strip()]
    pins = dict(re.fullmatch(r"([\w-]+)(?:\[[\w,]+\])?>=([\w.]+)", line).groups() for line in lines)
    assert pins == REQUIRED
