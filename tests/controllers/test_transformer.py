"""Transformer: sliding-window context, the KV ring, episode masking and relative (rotary) positions."""

import pytest
import torch

from lightning_memrl.controllers import CausalSelfAttention, Transformer
from lightning_memrl.errors import ConfigError
from tests.controllers._helpers import run_steps


def test_steps_see_at_most_context_steps_back():
    layer = CausalSelfAttention(8, num_heads=2, context=3, query_block=4)
    x = torch.randn(1, 12, 8, requires_grad=True)
    y, _ = layer.forward_sequence(x, layer.initial_state(1), torch.zeros(1, 12, dtype=torch.bool))
    (grad,) = torch.autograd.grad(y[0, 9].sum(), x)
    seen = grad[0].abs().sum(-1) > 0
    assert seen.tolist() == [False] * 6 + [True] * 4 + [False] * 2  # steps 6..9: itself and 3 before


def test_keys_of_an_earlier_episode_are_never_attended():
    layer = CausalSelfAttention(8, num_heads=2, context=16)
    x = torch.randn(1, 10, 8, requires_grad=True)
    reset = torch.zeros(1, 10, dtype=torch.bool)
    reset[0, 4] = True
    y, state = layer.forward_sequence(x, layer.initial_state(1), reset)
    (grad,) = torch.autograd.grad(y[0, 4:].sum(), x)
    assert grad[0, :4].abs().max() == 0
    # episode times 0 .. 5 of the last episode sit in slots 0 .. 5 of the 17-entry ring
    assert state["valid"][0].tolist() == [1.0] * 6 + [0.0] * 11
    assert state["time"].tolist() == [6.0]


def test_a_step_writes_one_slot_of_the_ring_in_place():
    """Inside `write_in_place()` the step's key and value go into the given cache, at slot `time % (context + 1)`,
    and nothing else of the cache moves."""
    layer = CausalSelfAttention(8, num_heads=2, context=3)
    state = layer.initial_state(2)
    for t in range(7):  # past the ring's 4 slots: the slot of episode time t is t % 4
        before = state["key"].clone()
        with torch.no_grad(), layer.write_in_place():
            _, after = layer.forward_step(torch.randn(2, 8), state, torch.zeros(2, dtype=torch.bool))
        assert after["key"] is state["key"] and after["value"] is state["value"]
        changed = (after["key"] != before).flatten(2).any(-1)  # [B, slots]
        assert changed.tolist() == [[slot == t % 4 for slot in range(4)]] * 2
        state = after
    assert state["valid"].tolist() == [[1.0] * 4] * 2


def test_a_state_of_another_cache_length_is_refused():
    layer = CausalSelfAttention(8, num_heads=2, context=3)
    old = {**layer.initial_state(2), "key": torch.zeros(2, 3, 2, 4), "value": torch.zeros(2, 3, 2, 4)}
    with pytest.raises(ConfigError, match="keeps 4 cache entries, got a state with 3"):
        layer.forward_step(torch.randn(2, 8), old, torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ConfigError, match="initial_state"):
        layer.forward_sequence(torch.randn(2, 5, 8), old, torch.zeros(2, 5, dtype=torch.bool))


def test_positions_are_relative_to_the_episode():
    # Rotary positions: a fresh episode gives the same outputs whatever its starting clock.
    model = Transformer(hidden_size=16, num_heads=2, context=8)
    x = torch.randn(2, 7, 16)
    no_reset = torch.zeros(2, 7, dtype=torch.bool)
    early = model.initial_state(2)
    late = tuple({**s, "time": torch.full_like(s["time"], 321.0)} for s in early)
    with torch.no_grad():
        y_early, _ = model.forward_sequence(x, early, no_reset)
        y_late, _ = model.forward_sequence(x, late, no_reset)
    torch.testing.assert_close(y_early, y_late, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_heads": 3}, "num_heads"), ({"context": 0}, "context"), ({"num_layers": 0}, "num_layers")],
)
def test_bad_arguments_raise_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Transformer(hidden_size=16, **kwargs)


@pytest.mark.parametrize("episode_so_far", [0, 3, 17, 40, 90])
@pytest.mark.parametrize("reset_first", [False, True])
def test_a_sequence_reads_only_the_carried_entries_it_can_see(episode_so_far, reset_first):
    """With a context of 40, a carried episode of `episode_so_far` steps is read through its newest entries only
    (rounded up to 16), and the outputs and state still equal the step-by-step run."""
    torch.manual_seed(0)
    layer = CausalSelfAttention(8, num_heads=2, context=40, query_block=7)
    state = layer.initial_state(3)
    with torch.no_grad():
        for _ in range(episode_so_far):  # a carried episode, its entries written by steps
            _, state = layer.forward_step(torch.randn(3, 8), state, torch.zeros(3, dtype=torch.bool))
        x, reset = torch.randn(3, 12, 8), torch.zeros(3, 12, dtype=torch.bool)
        reset[:, 0], reset[1, 5] = reset_first, True
        read = layer._carried(state, reset)[0].shape[1]
        assert read == (0 if reset_first else min(40, -(-min(episode_so_far, 40) // 16) * 16))
        y_seq, s_seq = layer.forward_sequence(x, state, reset)
        y_step, s_step = run_steps(layer, x, state, reset)
    torch.testing.assert_close(y_seq, y_step, atol=2e-5, rtol=2e-5)
    for key in s_seq:
        torch.testing.assert_close(s_seq[key], s_step[key], atol=2e-5, rtol=2e-5)
