"""Lightning callbacks for memory-augmented RL (YAML stacks live in the top-level `callbacks/`)."""

from lightning_memrl.callbacks.faiss_index_rebuild import FaissIndexRebuild
from lightning_memrl.callbacks.horizon_curriculum import HorizonCurriculum
from lightning_memrl.callbacks.kl_early_stopping import KLEarlyStopping
from lightning_memrl.callbacks.memory_consolidation import MemoryConsolidation
from lightning_memrl.callbacks.results import ResultsJson
from lightning_memrl.callbacks.task_curriculum import TaskCurriculum

__all__ = [
    "FaissIndexRebuild",
    "HorizonCurriculum",
    "KLEarlyStopping",
    "MemoryConsolidation",
    "ResultsJson",
    "TaskCurriculum",
]
