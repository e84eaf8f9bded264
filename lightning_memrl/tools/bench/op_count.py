"""Count the ATen ops a piece of code runs: a device-free proxy for its kernel launches.

At large batch sizes on a GPU, a step of the built-in tasks is bound by how many kernels it launches
(each costs a few microseconds of host time however small it is), so counting the ops on a CPU tells
how a change will move GPU throughput. Views (`select`, `unsqueeze`, ...) launch nothing and are not
counted; reads of a tensor value on the host (`.item()`, `bool(t)`, `int(t)`) are counted apart,
because on a GPU each one waits for the device.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

# the ATen op behind .item(), bool(tensor), int(tensor) and float(tensor): a device sync on a GPU
_HOST_READ = "aten._local_scalar_dense"


class AtenOpCounter(TorchDispatchMode):
    """Counts the non-view ATen ops (and the host reads) run inside its `with` block.

    Example:
        >>> with AtenOpCounter() as counter:
        ...     (torch.ones(3) + 1).sum()
        >>> counter.ops, counter.host_reads
        (3, 0)
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_op: Counter[str] = Counter()

    @property
    def ops(self) -> int:
        """Non-view ops run so far (host reads included)."""
        return sum(self.by_op.values())

    @property
    def host_reads(self) -> int:
        """Tensor values read on the host so far (each a device sync on a GPU)."""
        return self.by_op[_HOST_READ]

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if not func.is_view:
            self.by_op[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))
