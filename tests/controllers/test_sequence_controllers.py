"""The controller contract for Mamba2, Transformer, PseudoMamba and the hybrids."""

import importlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.controllers import (
    GRU,
    LSTM,
    CyborgFusion,
    CyborgHybrid,
    HybridMambaAttention,
    Mamba2,
    Mamba2Block,
    PseudoMamba,
    Transformer,
)
from lightning_memrl.state import map_states
from tests.controllers._helpers import random_state, run_steps

# Small shapes; chunk_size, context and query_block below T so chunk, window and block edges are hit.
CONTROLLERS = {
    "mamba2": lambda: Mamba2(hidden_size=16, input_size=3, num_layers=2, d_state=4, head_dim=8, chunk_size=4),
    "transformer": lambda: Transformer(hidden_size=16, input_size=3, num_heads=2, context=5, query_block=3),
    "pseudo_mamba": lambda: PseudoMamba(hidden_size=8, input_size=3),
    "hybrid_mamba_attention": lambda: HybridMambaAttention(
        hidden_size=16, input_size=3, d_state=4, head_dim=8, chunk_size=4, num_heads=2, context=6
    ),
    "cyborg_hybrid": lambda: CyborgHybrid(hidden_size=16, input_size=3, d_state=4, head_dim=8, chunk_size=4),
    "cyborg_fusion": lambda: CyborgFusion(hidden_size=16, input_size=3, d_state=4, head_dim=8, chunk_size=4),
}
NAMES = list(CONTROLLERS)


def _close(a, b, tol=2e-5):
    map_states(lambda u, v: torch.testing.assert_close(u, v, atol=tol, rtol=tol) or u, a, b)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10, deadline=None)
@given(
    batch=st.integers(1, 4),
    steps=st.integers(1, 14),
    reset_p=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**16),
)
def test_step_equals_sequence_with_random_resets(name, batch, steps, reset_p, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ctl = CONTROLLERS[name]()
    x = torch.randn(batch, steps, 3, generator=gen)
    reset = torch.rand(batch, steps, generator=gen) < reset_p
    state = random_state(ctl.initial_state(batch), gen)  # a non-zero carried state

    with torch.no_grad():
        y_seq, s_seq = ctl.forward_sequence(x, state, reset)
        y_step, s_step = run_steps(ctl, x, state, reset)

    torch.testing.assert_close(y_seq, y_step, atol=2e-5, rtol=2e-5)
    _close(s_seq, s_step)


@pytest.mark.parametrize("name", NAMES)
def test_a_step_leaves_its_input_state_as_it_was_unless_written_in_place(name):
    """Outside `write_in_place()` the given state is untouched; inside, the step's result is the same."""
    ctl = CONTROLLERS[name]()
    gen = torch.Generator().manual_seed(8)
    state = random_state(ctl.initial_state(3), gen)
    before = map_states(torch.clone, state)
    x, reset = torch.randn(3, 3, generator=gen), torch.tensor([False, True, False])
    with torch.no_grad():
        y, after = ctl.forward_step(x, state, reset)
        _close(state, before, tol=0)
        with ctl.write_in_place():
            y_in_place, after_in_place = ctl.forward_step(x, state, reset)
    assert not any(m.in_place for m in ctl.modules() if hasattr(m, "in_place"))  # and the context is left
    torch.testing.assert_close(y_in_place, y, atol=0, rtol=0)
    _close(after_in_place, after, tol=0)


@pytest.mark.parametrize("name", NAMES)
def test_sequence_split_across_calls_equals_one_call(name):
    ctl = CONTROLLERS[name]()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 11, 3, generator=gen)
    reset = torch.rand(2, 11, generator=gen) < 0.2
    state = random_state(ctl.initial_state(2), gen)
    with torch.no_grad():
        y_all, s_all = ctl.forward_sequence(x, state, reset)
        y_a, s_mid = ctl.forward_sequence(x[:, :6], state, reset[:, :6])
        y_b, s_end = ctl.forward_sequence(x[:, 6:], s_mid, reset[:, 6:])
    torch.testing.assert_close(torch.cat([y_a, y_b], 1), y_all, atol=2e-5, rtol=2e-5)
    _close(s_end, s_all)


@pytest.mark.parametrize("name", NAMES)
def test_reset_makes_the_past_irrelevant(name):
    ctl = CONTROLLERS[name]()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 10, 3, generator=gen)
    reset = torch.zeros(2, 10, dtype=torch.bool)
    reset[:, 6] = True
    with torch.no_grad():
        y, _ = ctl.forward_sequence(x, random_state(ctl.initial_state(2), gen), reset)
        fresh, _ = ctl.forward_sequence(x[:, 6:], ctl.initial_state(2), torch.zeros(2, 4, dtype=torch.bool))
    torch.testing.assert_close(y[:, 6:], fresh, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_reset_only_touches_its_row(name):
    ctl = CONTROLLERS[name]()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 5, 3, generator=gen)
    state = random_state(ctl.initial_state(2), gen)
    no_reset = torch.zeros(2, 5, dtype=torch.bool)
    one_reset = no_reset.clone()
    one_reset[1, 0] = True
    with torch.no_grad():
        y_a, _ = ctl.forward_sequence(x, state, no_reset)
        y_b, _ = ctl.forward_sequence(x, state, one_reset)
    torch.testing.assert_close(y_a[0], y_b[0])
    assert not torch.allclose(y_a[1], y_b[1])


GRADIENT_CONTROLLERS = {
    **CONTROLLERS,
    "gru": lambda: GRU(hidden_size=8, input_size=3),
    "lstm": lambda: LSTM(hidden_size=8, input_size=3),
}
BOOKKEEPING = ("valid", "time")  # a KV cache's validity mask and episode clock: no gradient to carry


def _carried_leaves(state, path=""):
    """`(path, tensor)` of every floating leaf of a state that carries information (not bookkeeping)."""
    if isinstance(state, dict):
        return [leaf for k, v in state.items() if k not in BOOKKEEPING for leaf in _carried_leaves(v, f"{path}.{k}")]
    if isinstance(state, tuple | list):
        return [leaf for i, v in enumerate(state) for leaf in _carried_leaves(v, f"{path}[{i}]")]
    return [(path, state)] if state.is_floating_point() else []


@pytest.mark.parametrize("name", list(GRADIENT_CONTROLLERS))
def test_gradients_reach_every_parameter_and_the_carried_state(name):
    """Every parameter gets a non-zero gradient, and so does every part of the carried state, in the rows whose
    episode goes on at step 0; in the rows reset at step 0 the carried state's gradient is zero."""
    ctl = GRADIENT_CONTROLLERS[name]()
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(3, 9, 3, generator=gen, requires_grad=True)
    reset = torch.rand(3, 9, generator=gen) < 0.2
    reset[:, 0] = torch.tensor([True, False, False])  # row 0 starts a new episode: its carried state is dropped
    state = random_state(ctl.initial_state(3), gen)
    carried = _carried_leaves(state)
    for _, leaf in carried:
        leaf.requires_grad_(True)
    y, _ = ctl.forward_sequence(x, state, reset)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in ctl.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname}: all-zero gradient"
    assert carried, "a controller with a carried state"
    for path, leaf in carried:
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all(), f"state{path}: no gradient"
        per_row = leaf.grad.flatten(1).abs().sum(1)
        # zero up to rounding: Mamba2's torch convolution subtracts the terms that reach across a reset
        assert per_row[0] <= 1e-5 * per_row.max(), f"state{path}: gradient through a reset"
        assert (per_row[1:] > 0).all(), f"state{path}: all-zero gradient in a row that carries it"


@pytest.mark.parametrize("name", NAMES)
def test_sizes_and_class_path(name):
    ctl = CONTROLLERS[name]()
    assert ctl.input_size == 3
    y, _ = ctl.forward_sequence(torch.randn(2, 4, 3), ctl.initial_state(2), torch.zeros(2, 4, dtype=torch.bool))
    assert y.shape == (2, 4, ctl.output_size)
    module, cls = type(ctl).__module__, type(ctl).__name__
    assert getattr(importlib.import_module("lightning_memrl.controllers"), cls) is type(ctl), module
    default = type(ctl)(hidden_size=32)  # input_size defaults to hidden_size, like GRU
    assert default.input_size == default.output_size == 32


def test_hybrid_passes_the_long_memory_initialisation_to_its_mamba_layers():
    """dt and A ranges reach every Mamba-2 layer of the hybrid (the long-memory init of mamba2.yaml)."""
    torch.manual_seed(0)
    hybrid = HybridMambaAttention(
        32,
        num_layers=4,
        attention_every=2,
        d_state=8,
        head_dim=8,
        num_heads=2,
        dt_min=0.001,
        dt_max=0.01,
        A_init_range=(1.0, 4.0),
    )
    mamba_layers = [m for m in hybrid.modules() if isinstance(m, Mamba2Block)]
    assert len(mamba_layers) == 2
    for block in mamba_layers:
        dt = torch.nn.functional.softplus(block.dt_bias)
        assert dt.min() >= 0.001 - 1e-6 and dt.max() <= 0.01 + 1e-6
        A = block.A_log.exp()
        assert A.min() >= 1.0 and A.max() <= 4.0


@pytest.mark.parametrize("name", NAMES)
def test_a_sequence_that_discards_its_final_state_outputs_the_same(name):
    """Inside `discard_final_state()` the outputs are unchanged; the Transformer's layers return no ring."""
    ctl = CONTROLLERS[name]()
    gen = torch.Generator().manual_seed(12)
    x, reset = torch.randn(2, 7, 3, generator=gen), torch.rand(2, 7, generator=gen) < 0.3
    state = random_state(ctl.initial_state(2), gen)
    with torch.no_grad():
        y, _ = ctl.forward_sequence(x, state, reset)
        with ctl.discard_final_state():
            y_only, state_only = ctl.forward_sequence(x, state, reset)
    torch.testing.assert_close(y_only, y, atol=0, rtol=0)
    assert not any(m.final_state_discarded for m in ctl.modules() if hasattr(m, "final_state_discarded"))
    if name == "transformer":
        assert all(layer_state is None for layer_state in state_only)
