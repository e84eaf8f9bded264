"""A training minibatch built by hand, for tests that call an agent's update without a rollout."""

import torch

from lightning_memrl.data.batch import SequenceBatch


def sequence_batch(agent, sequences: int, length: int, burn_in: int = 0, **fields) -> SequenceBatch:
    """`sequences` sequences of `burn_in + length` random observations from the agent's initial state, no episode
    start inside, action 0 and zero log-probs, values, advantages and returns unless `fields` give them."""
    observation_size = agent.env_spec.observation_size
    steps = burn_in + length
    defaults = {
        "obs": torch.randn(sequences, steps, observation_size),
        "starts": torch.zeros(sequences, steps, dtype=torch.bool),
        "states": agent.initial_state(sequences),
        "actions": torch.zeros(sequences, length, dtype=torch.long),
        "log_probs": torch.zeros(sequences, length),
        "values": torch.zeros(sequences, length),
        "advantages": torch.zeros(sequences, length),
        "returns": torch.zeros(sequences, length),
    }
    return SequenceBatch(**{**defaults, **fields}, burn_in=burn_in)
