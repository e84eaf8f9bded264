"""`memory_clock`: the episode clock's code joins the memory's query; its counts are agent state."""

import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import KVMemory
from lightning_memrl.specs import EnvSpec

SPEC = EnvSpec(observation_size=5, num_actions=4)
HIDDEN, INPUT, CLOCK = 16, 8, 6


def _agent(query_size=HIDDEN + INPUT + CLOCK, memory_clock=CLOCK):
    memory = KVMemory(query_size=query_size, capacity=6, num_heads=2, head_dim=4)
    controller = GRU(HIDDEN, input_size=INPUT)
    return RecurrentPPO(controller, env_spec=SPEC, memory=memory, memory_sees_input=True, memory_clock=memory_clock)


def test_the_query_holds_the_clock_code_of_the_episode_counts():
    torch.manual_seed(0)
    agent = _agent()
    seen = []
    original = agent.memory.forward_sequence
    agent.memory.forward_sequence = lambda query, state, reset: seen.append(query) or original(query, state, reset)
    obs = torch.randint(0, 2, (2, 6, 5)).float()
    reset = torch.zeros(2, 6, dtype=torch.bool)
    reset[:, 0] = reset[1, 4] = True
    with torch.no_grad():
        _, state = agent._features_sequence(obs, agent.initial_state(2), reset)
        code, counts = agent.clock.forward_sequence(obs, agent.clock.initial_state(2), reset)
    torch.testing.assert_close(seen[0][..., HIDDEN + INPUT :], code)
    assert state["clock"][1].tolist() == [*obs[1, 4:].sum(0).tolist(), obs[1, 4:].sum().item(), 2.0]  # from step 4
    torch.testing.assert_close(state["clock"], counts)


def test_bad_clock_settings_are_config_errors():
    with pytest.raises(ConfigError, match="memory_clock"):
        _agent(query_size=HIDDEN + INPUT)  # the query size must count the clock's width
    with pytest.raises(ConfigError, match="needs a memory"):
        RecurrentPPO(GRU(HIDDEN, input_size=INPUT), env_spec=SPEC, memory_clock=CLOCK)
    with pytest.raises(ConfigError, match=">= 0"):
        _agent(query_size=HIDDEN + INPUT - 1, memory_clock=-1)
