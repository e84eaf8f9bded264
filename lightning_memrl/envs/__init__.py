"""Torch-native vectorized memory tasks and their registry."""

from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.delayed_cue import DelayedCue
from lightning_memrl.envs.registry import (
    DIFFICULTIES,
    TaskSpec,
    get_task_spec,
    make_task,
    register_task,
    task_names,
)

__all__ = [
    "DIFFICULTIES",
    "DelayedCue",
    "TaskSpec",
    "VectorTask",
    "get_task_spec",
    "make_task",
    "register_task",
    "task_names",
]
