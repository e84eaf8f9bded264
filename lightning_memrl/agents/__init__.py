"""LightningModules for memory-augmented RL, and their action distributions."""

from lightning_memrl.agents.distributions import ActionHead, Bernoulli, Categorical, DiagGaussian, FactoredCategorical
from lightning_memrl.agents.ppo_loss import ppo_loss
from lightning_memrl.agents.recurrent_ppo import RecurrentPPO

__all__ = ["ActionHead", "Bernoulli", "Categorical", "DiagGaussian", "FactoredCategorical", "RecurrentPPO", "ppo_loss"]
