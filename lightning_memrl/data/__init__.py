"""Rollout collection, GAE and sequence minibatches for recurrent PPO."""

from lightning_memrl.data.batch import SequenceBatch
from lightning_memrl.data.collector import Rollout, RolloutCollector, sequences
from lightning_memrl.data.datamodule import RolloutDataModule
from lightning_memrl.data.evaluation import Evaluator, evaluate
from lightning_memrl.data.gae import compute_gae, explained_variance
from lightning_memrl.data.policy import Action, RecurrentPolicy

__all__ = [
    "Action",
    "Evaluator",
    "RecurrentPolicy",
    "Rollout",
    "RolloutCollector",
    "RolloutDataModule",
    "SequenceBatch",
    "compute_gae",
    "evaluate",
    "explained_variance",
    "sequences",
]
