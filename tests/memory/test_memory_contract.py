"""The memory contract for every memory: step x T == sequence, resets per env, trainable writes."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.state import map_states

from .conftest import MEMORIES, QUERY


def _run_steps(memory, query, state, reset):
    reads = []
    for t in range(query.shape[1]):
        read, state = memory.forward_step(query[:, t], state, reset[:, t])
        reads.append(read)
    return torch.stack(reads, 1), state


def _filled_state(memory, batch, gen, steps=7):
    """A non-empty carried-in state: the memory after a few random steps."""
    query = torch.randn(batch, steps, QUERY, generator=gen)
    with torch.no_grad():
        _, state = memory.forward_sequence(query, memory.initial_state(batch), torch.zeros(batch, steps, dtype=bool))
    return state


def _readable(state):
    """The state as reads see it: entries a circular buffer hides by `valid` (a reset hides, not erases) zeroed."""
    if isinstance(state, dict):
        state = {key: _readable(value) for key, value in state.items()}
        if "valid" in state:
            for key in ("keys", "values"):
                state[key] = state[key] * state["valid"][..., None, None]
        return state
    if isinstance(state, list | tuple):
        return type(state)(_readable(value) for value in state)
    return state


def _assert_states_close(a, b):
    map_states(lambda x, y: torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5) or x, a, b)


@pytest.mark.parametrize("name", MEMORIES)
@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 4), steps=st.integers(1, 14), reset_p=st.floats(0.0, 0.5), seed=st.integers(0, 2**16))
def test_step_equals_sequence_with_random_resets(name, batch, steps, reset_p, seed):
    gen = torch.Generator().manual_seed(seed)
    memory = MEMORIES[name]()
    state = _filled_state(memory, batch, gen)
    query = torch.randn(batch, steps, QUERY, generator=gen)
    reset = torch.rand(batch, steps, generator=gen) < reset_p

    read_seq, state_seq = memory.forward_sequence(query, state, reset)
    read_step, state_step = _run_steps(memory, query, state, reset)

    torch.testing.assert_close(read_seq, read_step, atol=1e-5, rtol=1e-5)
    _assert_states_close(state_seq, state_step)


@pytest.mark.parametrize("name", MEMORIES)
def test_reset_clears_exactly_the_envs_that_reset(name):
    memory = MEMORIES[name]()
    gen = torch.Generator().manual_seed(1)
    state = _filled_state(memory, 3, gen)
    query = torch.randn(3, 6, QUERY, generator=gen)
    no_reset = torch.zeros(3, 6, dtype=torch.bool)
    reset = no_reset.clone()
    reset[1, 2] = True  # env 1 starts a new episode at step 2

    read, _ = memory.forward_sequence(query, state, reset)
    kept, _ = memory.forward_sequence(query, state, no_reset)
    fresh, _ = memory.forward_sequence(query[1:2, 2:], memory.initial_state(1), no_reset[1:2, 2:])

    torch.testing.assert_close(read[[0, 2]], kept[[0, 2]])  # other envs untouched
    torch.testing.assert_close(read[1, :2], kept[1, :2])  # env 1 before its reset untouched
    torch.testing.assert_close(read[1:2, 2:], fresh, atol=1e-6, rtol=1e-5)  # after it: as a fresh memory
    assert not torch.allclose(read[1, 2:], kept[1, 2:])  # and the carried memory did matter


@pytest.mark.parametrize("name", MEMORIES)
def test_reset_step_gives_the_initial_state(name):
    memory = MEMORIES[name]()
    state = _filled_state(memory, 2, torch.Generator().manual_seed(2))
    query = torch.randn(2, QUERY)
    reset = torch.tensor([True, False])
    _, after_reset = memory.forward_step(query, state, reset)
    _, from_empty = memory.forward_step(query[:1], memory.initial_state(1), reset[:1])
    _assert_states_close(_readable(map_states(lambda x: x[:1], after_reset)), _readable(from_empty))


@pytest.mark.parametrize("name", MEMORIES)
def test_steps_that_see_no_entry_keep_every_gradient_finite(name):
    """A reset mid-sequence leaves its first step nothing to read: no NaN may leak into the backward pass."""
    memory = MEMORIES[name]()
    query = torch.randn(2, 5, QUERY, requires_grad=True)
    reset = torch.zeros(2, 5, dtype=torch.bool)
    reset[0, 0] = reset[1, 2] = True
    read, _ = memory.forward_sequence(query, _filled_state(memory, 2, torch.Generator().manual_seed(0)), reset)
    read.pow(2).sum().backward()
    assert torch.isfinite(read).all() and torch.isfinite(query.grad).all()
    for parameter_name, parameter in memory.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), parameter_name


@pytest.mark.parametrize("name", MEMORIES)
def test_a_step_leaves_its_input_state_as_it_was_unless_written_in_place(name):
    memory = MEMORIES[name]()
    state = _filled_state(memory, 3, torch.Generator().manual_seed(5))
    before = map_states(torch.clone, state)
    query, reset = torch.randn(3, QUERY), torch.tensor([False, True, False])
    with torch.no_grad():
        read, after = memory.forward_step(query, state, reset)
        map_states(lambda x, y: torch.testing.assert_close(x, y, atol=0, rtol=0) or x, state, before)
        with memory.write_in_place():
            read_in_place, after_in_place = memory.forward_step(query, state, reset)
    torch.testing.assert_close(read_in_place, read, atol=0, rtol=0)
    _assert_states_close(after_in_place, after)


@pytest.mark.parametrize("name", ["kv", "kv_lag", "kv_mixed_lags_age", "ring_attention", "ring_mean_age"])
def test_a_circular_buffer_written_in_place_is_the_given_buffer(name):
    memory = MEMORIES[name]()
    state = _filled_state(memory, 2, torch.Generator().manual_seed(6))
    with torch.no_grad(), memory.write_in_place():
        _, after = memory.forward_step(torch.randn(2, QUERY), state, torch.tensor([False, True]))
    assert after["keys"] is state["keys"] and after["values"] is state["values"]
    assert not memory._in_place  # and the context is left


@pytest.mark.parametrize("name", MEMORIES)
def test_gradient_reaches_the_write_of_an_earlier_step(name):
    """The last step's read trains what was written at step 0: the query of step 0 gets gradient."""
    memory = MEMORIES[name]()
    query = torch.randn(2, 3, QUERY, requires_grad=True)  # 3 steps: inside every ring's capacity
    read, _ = memory.forward_sequence(query, memory.initial_state(2), torch.zeros(2, 3, dtype=torch.bool))
    read[:, -1].pow(2).sum().backward()
    assert query.grad[:, 0].abs().sum() > 0


@pytest.mark.parametrize("name", ["pseudo_mode", "pmm", "slot"])
def test_write_gate_is_trained_by_later_reads(name):
    memory = MEMORIES[name]()
    query = torch.randn(2, 5, QUERY)
    read, _ = memory.forward_sequence(query, memory.initial_state(2), torch.zeros(2, 5, dtype=torch.bool))
    read[:, -1].pow(2).sum().backward()  # the gate of step t only acts on reads after t
    assert memory.to_gate.weight.grad.abs().sum() > 0


def test_miras_write_gates_get_gradient():
    """Fast step size, deep step size and retention act only on later reads; all three get gradient."""
    memory = MEMORIES["miras"]()
    query = torch.randn(2, 6, QUERY)
    read, _ = memory.forward_sequence(query, memory.initial_state(2), torch.zeros(2, 6, dtype=torch.bool))
    read[:, -1].pow(2).sum().backward()
    gate_grads = memory.to_gates.weight.grad.abs().sum(-1)  # rows: beta, theta, alpha, mix
    assert (gate_grads > 0).all(), gate_grads
    assert memory.w1_init.grad.abs().sum() > 0


@pytest.mark.parametrize("name", MEMORIES)
def test_diagnostics_are_detached_scalars(name):
    memory = MEMORIES[name]()
    query = torch.randn(2, 4, QUERY, requires_grad=True)
    memory.forward_sequence(query, memory.initial_state(2), torch.zeros(2, 4, dtype=torch.bool))
    stats = memory.diagnostics()
    assert stats
    for key, value in stats.items():
        assert value.dim() == 0 and not value.requires_grad and torch.isfinite(value), key


@pytest.mark.parametrize("name", MEMORIES)
def test_wrong_query_size_is_a_clear_error(name):
    memory = MEMORIES[name]()
    with pytest.raises(ValueError, match="query_size"):
        memory.forward_step(torch.randn(2, QUERY + 1), memory.initial_state(2), torch.zeros(2, dtype=torch.bool))


@pytest.mark.parametrize("name", MEMORIES)
def test_a_sequence_that_discards_its_final_state_reads_the_same(name):
    """Inside `discard_final_state()` the reads and their gradients are unchanged; the state may be None."""
    memory = MEMORIES[name]()
    gen = torch.Generator().manual_seed(9)
    state = _filled_state(memory, 3, gen)
    query = torch.randn(3, 6, QUERY, generator=gen, requires_grad=True)
    reset = torch.rand(3, 6, generator=gen) < 0.3
    read, _ = memory.forward_sequence(query, state, reset)
    (grad,) = torch.autograd.grad(read.pow(2).sum(), query)
    with memory.discard_final_state():
        read_only, _ = memory.forward_sequence(query, state, reset)
    (grad_only,) = torch.autograd.grad(read_only.pow(2).sum(), query)
    torch.testing.assert_close(read_only, read, atol=0, rtol=0)
    torch.testing.assert_close(grad_only, grad, atol=1e-6, rtol=1e-6)
    _, after = memory.forward_sequence(query, state, reset)
    assert after is not None  # and the context is left


@pytest.mark.parametrize("name", ["kv", "kv_mixed_lags_age", "ring_attention"])
def test_a_circular_buffer_builds_no_final_state_when_it_is_discarded(name):
    memory = MEMORIES[name]()
    state = _filled_state(memory, 2, torch.Generator().manual_seed(10))
    with torch.no_grad(), memory.discard_final_state():
        _, after = memory.forward_sequence(torch.randn(2, 4, QUERY), state, torch.zeros(2, 4, dtype=torch.bool))
    assert after is None


def test_a_parallel_memory_passes_the_discard_to_its_members():
    memory = MEMORIES["parallel"]()
    state = _filled_state(memory, 2, torch.Generator().manual_seed(11))
    with torch.no_grad(), memory.discard_final_state():
        _, (miras_state, kv_state) = memory.forward_sequence(
            torch.randn(2, 4, QUERY), state, torch.zeros(2, 4, dtype=torch.bool)
        )
    assert kv_state is None and miras_state is not None  # the member without a costly final state keeps it
