"""What the kernel choices report on this machine's CPU, for tests that check a `ran` string."""

from lightning_memrl.ops.triton_support import triton_available


def gru_scan_on_cpu() -> str:
    """The GRU scan's `ran` entry for inputs on the CPU: triton, where it is installed, is not the blocker named."""
    missing = "" if triton_available() else "; triton is not installed"
    return f"eager (the inputs are on cpu{missing})"
