"""Every `memrl ...` command quoted in README.md and the documentation site (docs/**/*.md) parses.

Commands are read from fenced code blocks (backslash continuations joined, `$ ` prompts, leading `VAR=value`
assignments and `# comments` dropped) and from inline code spans. Each distinct command is checked once:

- `memrl fit / validate / test ...`: its `--config` files exist, and it parses with `--print_config` appended
  (`--ckpt_path` and its value stripped: checkpoints are outputs of earlier runs);
- `memrl suite ...` (a run): its arguments parse, and a `--dry-run` of it expands the suite;
- `memrl suite compare / plot / table`, `memrl bench NAME`, `memrl tune`: the tool's own parser accepts the
  arguments (the tool stops right after parsing), and every flag used appears in its `--help` as written (so
  an abbreviation that argparse would accept still fails); the `memrl fit` arguments that `bench learning`
  and `tune` pass through after `--` are checked with their `--config` files as a `memrl fit --print_config`;
- a command that names a tool and gives no arguments is checked with `--help` (a bare `memrl` is a name, skipped).

The tasks page's preset table is checked against the task registry too.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from lightning_memrl.cli import MemRLCLI
from lightning_memrl.envs import DIFFICULTIES, get_task_spec, task_names
from lightning_memrl.tools.main import main

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FIT_COMMANDS = ("fit", "validate", "test")
SUITE_SUBCOMMANDS = ("compare", "plot", "table")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


# --- finding the commands ---------------------------------------------------------------------------------
def _command(text: str) -> list[str] | None:
    """The argv of a `memrl` command line, or None when the line is something else."""
    text = text.strip()
    if text.startswith("$ "):
        text = text[2:]
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        return None
    while tokens and ASSIGNMENT.match(tokens[0]):
        tokens = tokens[1:]
    return tokens if len(tokens) > 1 and tokens[0] == "memrl" else None  # a bare `memrl` names the command


def quoted_commands(markdown: str) -> Iterator[tuple[int, list[str]]]:
    """`(line number, argv)` of every `memrl` command in fenced blocks and inline code of a markdown text."""
    in_fence, pending, pending_line = False, "", 0
    for number, line in enumerate(markdown.splitlines(), start=1):
        if FENCE.match(line):
            in_fence, pending = not in_fence, ""
            continue
        if in_fence:
            if not pending:
                pending_line = number
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            argv = _command(pending + line)
            pending = ""
            if argv:
                yield pending_line, argv
        else:
            for span in INLINE_CODE.findall(line):
                argv = _command(span)
                if argv:
                    yield number, argv


def _collect() -> dict[str, list[str]]:
    """Each distinct command (as a shell line) -> where it is quoted."""
    found: dict[str, list[str]] = {}
    for path in DOC_FILES:
        for number, argv in quoted_commands(path.read_text()):
            found.setdefault(shlex.join(argv), []).append(f"{path.relative_to(ROOT)}:{number}")
    return found


COMMANDS = _collect()


# --- checking one command ---------------------------------------------------------------------------------
class _Parsed(Exception):
    """Raised by the patched `parse_args` once a tool's arguments parsed: nothing runs after it."""

    def __init__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace):
        super().__init__()
        self.parser, self.namespace = parser, namespace


def _run(argv: list[str]) -> tuple[int | str | None, str]:
    """`memrl argv` in this process: (exit status, printed output)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            status = main(argv)
        except SystemExit as exit_info:
            status = exit_info.code
    return status, out.getvalue()


class _ParserBuilt(Exception):
    def __init__(self, parser):
        super().__init__()
        self.parser = parser


class _ParserOnly(MemRLCLI):
    """`MemRLCLI` up to its parser: `parse_arguments` is the hook LightningCLI calls right after building it."""

    def parse_arguments(self, parser, args):
        raise _ParserBuilt(parser)


@functools.cache
def _fit_parser():
    """The parser `memrl fit / validate / test` parse with, built once (building it is most of a parse's time)."""
    try:
        _ParserOnly(args=[])
    except _ParserBuilt as built:
        return built.parser
    raise AssertionError("MemRLCLI built no parser")


def _parse_fit(args: list[str]) -> tuple[int | str | None, str]:
    """`memrl fit ...` parsed as `MemRLCLI.parse_arguments` parses it: (exit status, printed output)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            _fit_parser().parse_args(args)
            status = "parsed without exiting"  # --print_config and --help always exit
        except SystemExit as exit_info:
            status = exit_info.code
    return status, out.getvalue()


def _parse_tool(argv: list[str]) -> _Parsed:
    """Parse a tool's arguments with its own parser, stopping before it does anything."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise _Parsed(self, original(self, args, namespace))

    out = io.StringIO()
    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", parse_args),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        try:
            status = main(argv)
        except _Parsed as parsed:
            return parsed
        except SystemExit as exit_info:
            status = exit_info.code
    raise AssertionError(f"`memrl {shlex.join(argv)}` was rejected (status {status}):\n{out.getvalue()}")


def _flags_in_help(argv: list[str], parsed: _Parsed) -> None:
    """Every flag the command uses appears in the tool's `--help` exactly (no abbreviations)."""
    help_text = parsed.parser.format_help()
    known = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", help_text))
    used = argv[: argv.index("--")] if "--" in argv else argv
    for token in used:
        if token.startswith("-") and not re.fullmatch(r"-\d+(\.\d*)?", token):
            flag = token.split("=", 1)[0]
            assert flag in known, f"`memrl {shlex.join(argv)}`: {flag} is not in the tool's --help:\n{help_text}"


def _check_fit(args: list[str]) -> None:
    if "--help" in args or "-h" in args:
        status, output = _parse_fit(args)
        assert status == 0, f"`memrl {shlex.join(args)}` failed:\n{output}"
        return
    kept: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--ckpt_path":
            next(tokens, None)
        elif not token.startswith("--ckpt_path="):
            kept.append(token)
    for flag, value in zip(kept, kept[1:], strict=False):
        if flag in ("--config", "-c"):
            assert (ROOT / value).is_file(), f"`memrl {shlex.join(args)}`: no config file {value}"
    status, output = _parse_fit([*kept, "--print_config"])
    assert status == 0, f"`memrl {shlex.join(kept)} --print_config` failed (status {status}):\n{output}"


@functools.cache
def _suite_dry_run(config: str, root_dir: str | None, filters: tuple[str, ...], results: str | None):
    """A `--dry-run` of a suite command, from the only options a dry run reads (the others were parsed)."""
    args = ["suite", "--config", config, "--dry-run"]
    args += ["--root-dir", root_dir] if root_dir else []
    args += ["--results", results] if results else []
    for spec in filters:
        args += ["--filter", spec]
    return _run(args)


def _check_pass_through(configs: list[str], overrides: list[str]) -> None:
    """The `memrl fit` arguments a tool passes on (after `--`), with its config files."""
    args = ["fit"]
    for config in configs:
        args += ["--config", config]
    _check_fit([*args, *overrides])


def check_command(argv: list[str]) -> None:
    """Raise AssertionError (with the reason) unless `argv` (`memrl ...`) parses."""
    assert argv[:1] == ["memrl"] and len(argv) > 1, f"not a memrl command: {shlex.join(argv)}"
    args = argv[1:]
    tool = args[0]
    if tool in FIT_COMMANDS:
        _check_fit(args)
        return
    assert tool in ("suite", "bench", "tune", "export"), f"`memrl {tool}` is not a memrl command"
    named = 2 if tool == "bench" or (tool == "suite" and args[1:2] and args[1] in SUITE_SUBCOMMANDS) else 1
    if len(args) <= named or args[named:] in (["--help"], ["-h"]):  # a tool named, no arguments: its --help
        status, output = _run([*args[:named], "--help"])
        assert status == 0, f"`memrl {shlex.join(args[:named])} --help` failed (status {status}):\n{output}"
        return
    parsed = _parse_tool(args)
    _flags_in_help(args, parsed)
    namespace = parsed.namespace
    if tool == "suite" and named == 1:
        options = (namespace.config, namespace.root_dir, tuple(namespace.filter), namespace.results)
        status, output = _suite_dry_run(*options)
        assert status == 0, f"a dry run of `memrl {shlex.join(args)}` failed (status {status}):\n{output}"
    if tool == "tune":
        assert (ROOT / namespace.search).is_file(), f"`memrl {shlex.join(args)}`: no search file {namespace.search}"
    if (tool == "tune" or args[1] == "learning") and hasattr(namespace, "overrides"):
        _check_pass_through(namespace.config, namespace.overrides)


# --- the tests --------------------------------------------------------------------------------------------
def test_the_docs_quote_commands():
    """The extraction finds the commands (a broken extractor would check nothing)."""
    assert len(COMMANDS) > 30
    where = {place.split(":")[0] for places in COMMANDS.values() for place in places}
    assert "README.md" in where and "docs/getting-started.md" in where


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=lambda c: c[6:70])
def test_quoted_command_parses(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    try:
        check_command(shlex.split(command))
    except AssertionError as err:
        raise AssertionError(f"{err}\nquoted at {', '.join(COMMANDS[command])}") from None


BROKEN_DOC = """\
A page with broken commands:

```bash
memrl fit --config configs/quickstart.yaml \\
  --data.num_envz 16
OMP_NUM_THREADS=1 memrl bench throughput --num-env 16   # an abbreviation argparse would accept
```

Inline: `memrl suite --config configs/suites/quick.yaml --jobz 2`, `memrl fit --config configs/nope.yaml`,
`memrl bench learning --config configs/quickstart.yaml -- --trainer.max_epochz 3`,
`memrl tune --config configs/quickstart.yaml --search configs/search/nope.yaml --n-trials 2`,
`memrl bench throughput --fused-scan sometimes` and `memrl suite table --results r.jsonl --metric speed`.
"""


def test_a_broken_command_in_a_doc_fails(tmp_path, monkeypatch):
    """The check has teeth: each command of a page with bad flags, values or files is rejected."""
    monkeypatch.chdir(ROOT)
    page = tmp_path / "broken.md"
    page.write_text(BROKEN_DOC)
    commands = [argv for _, argv in quoted_commands(page.read_text())]
    assert len(commands) == 8
    for argv in commands:
        with pytest.raises(AssertionError):
            check_command(argv)
    check_command(["memrl", "fit", "--config", "configs/quickstart.yaml", "--data.num_envs", "16"])  # the fix


def _preset_rows(markdown: str) -> dict[tuple[str, str], tuple[str, str, str]]:
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1] in DIFFICULTIES:
            rows[cells[0].strip("`"), cells[1]] = (cells[2], cells[3], cells[4])
    return rows


def test_the_tasks_page_matches_the_registry():
    """The preset table of docs/tasks.md: every task x difficulty, its arguments, target and chance level."""
    rows = _preset_rows((ROOT / "docs" / "tasks.md").read_text())
    assert set(rows) == {(t, d) for t in task_names() for d in DIFFICULTIES}
    for (task, difficulty), (arguments, target, chance) in rows.items():
        spec = get_task_spec(task)
        kwargs = spec.kwargs(difficulty)
        assert arguments == ", ".join(f"{k} {v}" for k, v in kwargs.items()), (task, difficulty)
        assert float(target) == spec.target_success[difficulty], (task, difficulty)
        expected = spec.chance_level(difficulty=difficulty)
        if "^" in chance:  # too small for a float: written as base^exponent
            base, exponent = chance.split("^")
            assert expected == float(base) ** int(exponent), (task, difficulty)
        else:
            assert float(chance) == pytest.approx(expected, rel=2e-3), (task, difficulty)
