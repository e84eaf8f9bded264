"""Torch-native vectorized memory tasks and their registry."""

from lightning_memrl.envs.associative_recall import AssociativeRecall
from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.copy_memory import CopyMemory
from lightning_memrl.envs.cross_episode_recall import CrossEpisodeRecall
from lightning_memrl.envs.delayed_cue import DelayedCue
from lightning_memrl.envs.distractor_navigation import DistractorNavigation
from lightning_memrl.envs.gym_adapter import GymVectorTask, make_gym_task
from lightning_memrl.envs.gym_spaces import action_spec, flat_size, flatten_batch, to_env_actions
from lightning_memrl.envs.multi_cue_delay import MultiCueDelay
from lightning_memrl.envs.n_back import NBack
from lightning_memrl.envs.pattern_binding import PatternBinding
from lightning_memrl.envs.permuted_copy import PermutedCopy
from lightning_memrl.envs.registry import (
    DIFFICULTIES,
    TaskSpec,
    get_task_spec,
    make_task,
    register_task,
    task_names,
)
from lightning_memrl.envs.schedule import task_schedule
from lightning_memrl.envs.t_maze import TMaze

__all__ = [
    "CrossEpisodeRecall",
    "DIFFICULTIES",
    "GymVectorTask",
    "action_spec",
    "flat_size",
    "flatten_batch",
    "make_gym_task",
    "to_env_actions",
    "AssociativeRecall",
    "CopyMemory",
    "DelayedCue",
    "DistractorNavigation",
    "MultiCueDelay",
    "NBack",
    "PatternBinding",
    "PermutedCopy",
    "TMaze",
    "TaskSpec",
    "VectorTask",
    "get_task_spec",
    "make_task",
    "register_task",
    "task_names",
    "task_schedule",
]
