"""LightningModules for memory-augmented RL."""

from lightning_memrl.agents.ppo_loss import ppo_loss
from lightning_memrl.agents.recurrent_ppo import RecurrentPPO

__all__ = ["RecurrentPPO", "ppo_loss"]
