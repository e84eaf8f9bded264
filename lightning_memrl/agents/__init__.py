"""LightningModules for memory-augmented RL, and their action distributions."""

from lightning_memrl.agents.distributions import ActionHead, Bernoulli, Categorical, DiagGaussian, FactoredCategorical
from lightning_memrl.agents.ppo_loss import ppo_loss
from lightning_memrl.agents.recurrent_ppo import RecurrentPPO
from lightning_memrl.agents.value_norm import ValueNormalizer

__all__ = [
    "ActionHead",
    "Bernoulli",
    "Categorical",
    "DiagGaussian",
    "FactoredCategorical",
    "RecurrentPPO",
    "ValueNormalizer",
    "ppo_loss",
]
