"""Every tool's command line takes whole option names only: a prefix of a real one is an error, not that option."""

import pytest

from lightning_memrl.tools.bench import BENCHMARKS
from lightning_memrl.tools.main import SUITE_COMMANDS, main

TOOLS = [["bench", name] for name in BENCHMARKS] + [["suite", sub] for sub in SUITE_COMMANDS] + [["tune"], ["export"]]


@pytest.mark.parametrize("tool", TOOLS, ids=" ".join)
def test_a_prefix_of_an_option_is_not_that_option(tool, capsys):
    """`--hel` would be `--help` (usage printed, exit 0) with argparse's default prefix matching."""
    with pytest.raises(SystemExit) as exit_info:
        main([*tool, "--hel"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "show this help message" not in captured.out and "error:" in captured.err
