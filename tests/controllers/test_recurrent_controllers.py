"""The controller contract: forward_step x T == forward_sequence, with resets anywhere."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_memrl.controllers import GRU, LSTM
from lightning_memrl.state import map_states

CONTROLLERS = [
    lambda d, h: GRU(hidden_size=h, input_size=d),
    lambda d, h: GRU(hidden_size=h, input_size=d, update_bias_init=2.0),
    lambda d, h: LSTM(hidden_size=h, input_size=d),
]


def _run_steps(ctl, x, state, reset):
    ys = []
    for t in range(x.shape[1]):
        y, state = ctl.forward_step(x[:, t], state, reset[:, t])
        ys.append(y)
    return torch.stack(ys, 1), state


@pytest.mark.parametrize("make", CONTROLLERS)
@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 5),
    steps=st.integers(1, 24),
    reset_p=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**16),
)
def test_step_equals_sequence_with_random_resets(make, batch, steps, reset_p, seed):
    gen = torch.Generator().manual_seed(seed)
    ctl = make(3, 8)
    x = torch.randn(batch, steps, 3, generator=gen)
    reset = torch.rand(batch, steps, generator=gen) < reset_p
    state = ctl.initial_state(batch)
    state = map_states(lambda s: torch.randn(s.shape, generator=gen), state)  # a non-zero carried state

    y_seq, s_seq = ctl.forward_sequence(x, state, reset)
    y_step, s_step = _run_steps(ctl, x, state, reset)

    torch.testing.assert_close(y_seq, y_step, atol=1e-5, rtol=1e-5)
    map_states(lambda a, b: torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5) or a, s_seq, s_step)


@pytest.mark.parametrize("make", CONTROLLERS)
def test_reset_makes_the_past_irrelevant(make):
    ctl = make(4, 6)
    x = torch.randn(2, 10, 4)
    reset = torch.zeros(2, 10, dtype=torch.bool)
    reset[:, 6] = True
    y, _ = ctl.forward_sequence(x, map_states(torch.randn_like, ctl.initial_state(2)), reset)
    fresh, _ = ctl.forward_sequence(x[:, 6:], ctl.initial_state(2), torch.zeros(2, 4, dtype=torch.bool))
    torch.testing.assert_close(y[:, 6:], fresh, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("make", CONTROLLERS)
def test_reset_only_touches_its_row(make):
    ctl = make(4, 6)
    x = torch.randn(2, 5, 4)
    state = map_states(torch.randn_like, ctl.initial_state(2))
    no_reset = torch.zeros(2, 5, dtype=torch.bool)
    one_reset = no_reset.clone()
    one_reset[1, 0] = True
    y_a, _ = ctl.forward_sequence(x, state, no_reset)
    y_b, _ = ctl.forward_sequence(x, state, one_reset)
    torch.testing.assert_close(y_a[0], y_b[0])
    assert not torch.allclose(y_a[1], y_b[1])


def test_gru_matches_torch_nn_gru():
    ctl = GRU(hidden_size=5, input_size=3)
    ref = torch.nn.GRU(3, 5, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(ctl.weight_ih)
        ref.weight_hh_l0.copy_(ctl.weight_hh)
        ref.bias_ih_l0.copy_(ctl.bias_ih)
        ref.bias_hh_l0.copy_(ctl.bias_hh)
    x, h0 = torch.randn(4, 7, 3), torch.randn(4, 5)
    y, h = ctl.forward_sequence(x, h0, torch.zeros(4, 7, dtype=torch.bool))
    y_ref, h_ref = ref(x, h0[None])
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h, h_ref[0], atol=1e-6, rtol=1e-5)


def test_lstm_matches_torch_nn_lstm():
    ctl = LSTM(hidden_size=5, input_size=3)
    ref = torch.nn.LSTM(3, 5, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(ctl.weight_ih)
        ref.weight_hh_l0.copy_(ctl.weight_hh)
        ref.bias_ih_l0.copy_(ctl.bias)
        ref.bias_hh_l0.zero_()
    x, h0, c0 = torch.randn(4, 7, 3), torch.randn(4, 5), torch.randn(4, 5)
    y, (h, c) = ctl.forward_sequence(x, (h0, c0), torch.zeros(4, 7, dtype=torch.bool))
    y_ref, (h_ref, c_ref) = ref(x, (h0[None], c0[None]))
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c, c_ref[0], atol=1e-6, rtol=1e-5)
