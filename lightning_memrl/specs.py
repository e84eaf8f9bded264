"""What an agent needs to know about an environment to build its input and output layers."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EnvSpec:
    """Observation and action sizes of a (flattened) environment.

    Attributes:
        observation_size: features of one flattened observation.
        num_actions: number of discrete actions.
    """

    observation_size: int
    num_actions: int


# Checkpoints store the spec in the agent's hyperparameters; allow it under `weights_only` loading.
torch.serialization.add_safe_globals([EnvSpec])
