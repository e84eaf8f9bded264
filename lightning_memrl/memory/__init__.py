"""External memories sharing one contract (see `memory.base.Memory`)."""

from lightning_memrl.memory.base import Memory

__all__ = ["Memory"]
