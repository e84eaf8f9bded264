"""Lightning callbacks for memory-augmented RL (YAML stacks live in the top-level `callbacks/`)."""

from lightning_memrl.callbacks.kl_early_stopping import KLEarlyStopping
from lightning_memrl.callbacks.results import ResultsJson

__all__ = ["KLEarlyStopping", "ResultsJson"]
