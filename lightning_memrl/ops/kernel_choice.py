"""Which implementation of an op runs, and why; a warning where a fused kernel was expected and cannot run.

An op with a fused kernel (Triton, mamba_ssm) and a pure-PyTorch path takes a `requested` setting:
`True` (the fused kernel, asked for), `False` (the PyTorch path) or `None` (the op's default). The op lists
what stops its kernel here (`blockers`); `choose_kernel` turns both into a `KernelChoice` and warns once per
op and reason when the fused kernel was asked for, or is the default on this device type, and cannot run:
nothing switches silently. The default on a CPU, where no fused kernel is expected, stays quiet.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

_warned: set[str] = set()


@dataclass(frozen=True)
class KernelChoice:
    """What an op runs: `fused` (the kernel) or not, its name, and why the kernel did not run (or None)."""

    fused: bool
    ran: str
    why: str | None = None

    def __str__(self) -> str:
        return self.ran if self.why is None else f"{self.ran} ({self.why})"


def choose_kernel(
    op: str,
    requested: bool | None,
    blockers: Sequence[str],
    *,
    fused_name: str,
    fallback_name: str,
    expected: bool,
) -> KernelChoice:
    """The implementation `op` runs.

    Args:
        op: how the warning names the op, e.g. `"GRU scan"`.
        requested: `True` asks for the fused kernel, `False` for the fallback, `None` takes the default
            (the fused kernel where nothing blocks it).
        blockers: why the fused kernel cannot run here (empty: it can), e.g. `["the inputs are on cpu"]`.
        fused_name: what the fused kernel is called in reports (`"triton"`).
        fallback_name: what the fallback is called (`"eager"`).
        expected: whether the default would pick the fused kernel on this device type (a CUDA device):
            a default that falls back there warns too.
    """
    if requested is False:
        return KernelChoice(False, fallback_name, "turned off")
    if not blockers:
        return KernelChoice(True, fused_name)
    why = "; ".join(blockers)
    if requested or expected:
        asked = "was requested" if requested else "is the default here"
        warn_once(f"{op}: {fused_name} {asked} but cannot run ({why}); {fallback_name} runs instead", stacklevel=4)
    return KernelChoice(False, fallback_name, why)


def warn_once(message: str, stacklevel: int = 3) -> None:
    """`warnings.warn(message)` the first time this message is given in the process."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=stacklevel)


def forget_warnings() -> None:
    """Let every warning of `choose_kernel` be given again (tests)."""
    _warned.clear()
