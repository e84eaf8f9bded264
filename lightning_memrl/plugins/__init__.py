"""Lightning plugins: `AtomicCheckpointIO` (checkpoint files that survive a kill)."""

from lightning_memrl.plugins.checkpoint_io import AtomicCheckpointIO, read_checkpoint

__all__ = ["AtomicCheckpointIO", "read_checkpoint"]
