"""`memory_sees_input`: the memory is queried with [controller output ; controller input]."""

import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import KVMemory

HIDDEN, INPUT = 16, 8  # different sizes, so an error naming them says which is which


def _data():
    dm = RolloutDataModule(
        env="delayed_cue", env_kwargs={"horizon": 5, "num_cues": 4}, num_envs=4, rollout_steps=16, seq_len=8,
        burn_in=2, num_minibatches=2, update_epochs=1, seed=3,
    )  # fmt: skip
    dm.setup("fit")
    return dm


def _agent(dm, key_lag=0, **model_kwargs):
    memory = KVMemory(query_size=HIDDEN + INPUT, capacity=6, num_heads=2, head_dim=4, key_lag=key_lag)
    controller = GRU(HIDDEN, input_size=INPUT)
    return RecurrentPPO(controller, env_spec=dm.env_spec, memory=memory, memory_sees_input=True, **model_kwargs)


@pytest.mark.parametrize("feed_memory_back", [False, True])
def test_the_memory_reads_with_the_controller_output_and_input(feed_memory_back):
    torch.manual_seed(0)
    dm = _data()
    agent = _agent(dm, feed_memory_back=feed_memory_back)
    obs = torch.randn(3, 5, dm.env_spec.observation_size)
    reset = torch.zeros(3, 5, dtype=torch.bool)
    reset[:, 0] = True
    reset[1, 3] = True
    with torch.no_grad():
        features, _ = agent._features_sequence(obs, agent.initial_state(3), reset)
        h, read = features[..., :HIDDEN], features[..., HIDDEN:]
        if feed_memory_back:  # rebuild the encoder's input: the observation and the previous read (zero at a reset)
            previous = torch.cat([torch.zeros_like(read[:, :1]), read[:, :-1]], 1) * ~reset[..., None]
            x = agent.encoder(torch.cat([obs, previous], -1))
        else:
            x = agent.encoder(obs)
        memory, state = agent.memory, agent.memory.initial_state(3)
        sees_input, _ = memory.forward_sequence(torch.cat([h, x], -1), state, reset)
        blind, _ = memory.forward_sequence(torch.cat([h, torch.zeros_like(x)], -1), state, reset)
    torch.testing.assert_close(read, sees_input)
    assert (read - blind).abs().amax() > 1e-3  # the input part of the query changes the read


def test_a_query_size_of_the_output_only_is_a_config_error_naming_the_sizes():
    dm = _data()
    memory = KVMemory(query_size=HIDDEN, capacity=6)
    with pytest.raises(
        ConfigError, match=rf"query_size \({HIDDEN}\).*output size plus input size \({HIDDEN + INPUT}\)"
    ):
        RecurrentPPO(GRU(HIDDEN, input_size=INPUT), env_spec=dm.env_spec, memory=memory, memory_sees_input=True)
    # and the other way round: a query sized for the input too, without memory_sees_input
    memory = KVMemory(query_size=HIDDEN + INPUT, capacity=6)
    with pytest.raises(ConfigError, match=rf"query_size \({HIDDEN + INPUT}\).*output size \({HIDDEN}\)"):
        RecurrentPPO(GRU(HIDDEN, input_size=INPUT), env_spec=dm.env_spec, memory=memory)


def test_memory_sees_input_without_a_memory_is_a_config_error():
    dm = _data()
    with pytest.raises(ConfigError, match="memory_sees_input needs a memory"):
        RecurrentPPO(GRU(HIDDEN), env_spec=dm.env_spec, memory_sees_input=True)
