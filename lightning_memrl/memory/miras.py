"""DualTierMiras: a per-env parametric memory learned at test time, in two tiers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.base import Memory
from lightning_memrl.memory.delta_rule import delta_rule_chunked, delta_rule_step
from lightning_memrl.memory.functional import check_query
from lightning_memrl.state import mask_state


class DualTierMiras(Memory):
    """Fast linear tier + deep MLP tier, both written by inner gradient steps, read with the query.

    Per env and step, with `q, k = normalize(W_q h), normalize(W_k h)`, `v = W_v h` (read before write):

    - Fast tier `S [D, D]`: one SGD step on `1/2 ||k S - v||^2` with a data-dependent step size
      `beta = sigmoid(W_b h)` (the delta rule; chunked in `forward_sequence`, see `delta_rule`).
    - Deep tier, an MLP `M(x) = W2 tanh(W1 x)` whose weights are `W_init + dW` (learned initial
      weights; the state holds `dW`, so a zero state is the fresh memory): the gradient `G` of the
      Huber loss `huber(M(k) - v)` (closed form), momentum `m <- mu m - theta G` with
      `theta = deep_lr * sigmoid(W_theta h)`, and retention `dW <- alpha dW + m` with the
      data-dependent gate `alpha = sigmoid(W_alpha h)` (forgetting pulls back to `W_init`).
    - Read: `w = sigmoid(W_mix h)`, `r = W_o (w q S + (1 - w) M(q))`.

    Every inner update is an ordinary differentiable tensor expression, so PPO trains the
    projections and all gates (beta, theta, alpha, mix) through later reads. The deep tier is
    nonlinear in its weights and has no exact parallel form: `forward_sequence` steps it, after
    computing all projections at once; the fast tier runs chunked.

    Args:
        query_size: controller output size `H`.
        memory_dim: key / value width `D`.
        deep_hidden: hidden width of the deep-tier MLP.
        read_size: size of the read-out (default `memory_dim`).
        deep_lr: largest inner step size of the deep tier. The inner gradient descent (with momentum
            `mu`, an effective step of `deep_lr * theta / (1 - mu)`) must stay stable on the MLP's
            curvature (about `|tanh(W1 k)|^2`, up to `deep_hidden`): past that the memory
            oscillates and the gradient through the unrolled inner loop explodes (measured on
            CartPole, `deep_hidden` 32: PPO gradient norms of 1e5-1e8 at 0.5, about 1-10 at 0.05).
        momentum: momentum `mu` of the deep tier.
        huber_delta: Huber threshold of the deep tier's loss.
        retention_bias_init: initial bias of the retention gate (3 -> alpha ~ 0.95).
        chunk_size: steps per chunk of the fast tier's sequence form.
    """

    def __init__(
        self,
        query_size: int = 128,
        memory_dim: int = 32,
        deep_hidden: int = 32,
        read_size: int | None = None,
        deep_lr: float = 0.5,
        momentum: float = 0.9,
        huber_delta: float = 1.0,
        retention_bias_init: float = 3.0,
        chunk_size: int = 64,
    ):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"DualTierMiras momentum must be in [0, 1), got {momentum}")
        for name, value in (("memory_dim", memory_dim), ("deep_hidden", deep_hidden), ("chunk_size", chunk_size)):
            if value < 1:
                raise ConfigError(f"DualTierMiras {name} must be >= 1, got {value}")
        if deep_lr <= 0 or huber_delta <= 0:
            raise ConfigError(f"DualTierMiras deep_lr and huber_delta must be > 0, got {deep_lr}, {huber_delta}")
        self.query_size = query_size
        self.read_size = read_size or memory_dim
        self.memory_dim = memory_dim
        self.deep_hidden = deep_hidden
        self.deep_lr = deep_lr
        self.momentum = momentum
        self.huber_delta = huber_delta
        self.chunk_size = chunk_size
        self.to_qkv = nn.Linear(query_size, 3 * memory_dim)
        # one projection for the four scalar gates: fast step size, deep step size, retention, mix
        self.to_gates = nn.Linear(query_size, 4)
        with torch.no_grad():
            self.to_gates.bias.copy_(torch.tensor([0.0, 0.0, retention_bias_init, 0.0]))
        self.w1_init = nn.Parameter(torch.randn(deep_hidden, memory_dim) / math.sqrt(memory_dim))
        self.w2_init = nn.Parameter(torch.randn(memory_dim, deep_hidden) * 0.1 / math.sqrt(deep_hidden))
        self.out = nn.Linear(memory_dim, self.read_size)
        self._stats: dict[str, torch.Tensor] = {}

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        d, hid = self.memory_dim, self.deep_hidden
        return {
            "fast": torch.zeros(batch_size, d, d, device=device),
            "w1": torch.zeros(batch_size, hid, d, device=device),
            "w2": torch.zeros(batch_size, d, hid, device=device),
            "m1": torch.zeros(batch_size, hid, d, device=device),
            "m2": torch.zeros(batch_size, d, hid, device=device),
        }

    def _project(self, query: torch.Tensor):
        q, k, v = self.to_qkv(query).chunk(3, -1)
        gates = torch.sigmoid(self.to_gates(query)).unbind(-1)  # beta, theta / deep_lr, alpha, mix
        return F.normalize(q, dim=-1), F.normalize(k, dim=-1), v, gates

    def _deep_step(self, state, q, k, v, theta, alpha):
        """One deep-tier step on `[B, ...]` tensors: `(read [B, D], huber loss [B], next state)`."""
        w1 = self.w1_init + state["w1"]
        w2 = self.w2_init + state["w2"]
        read = torch.einsum("bdh,bh->bd", w2, torch.tanh(torch.einsum("bhd,bd->bh", w1, q)))
        act = torch.tanh(torch.einsum("bhd,bd->bh", w1, k))
        err = torch.einsum("bdh,bh->bd", w2, act) - v
        grad_out = err.clamp(-self.huber_delta, self.huber_delta)  # d huber / d prediction
        grad_w2 = grad_out.unsqueeze(-1) * act.unsqueeze(1)
        grad_pre = torch.einsum("bdh,bd->bh", w2, grad_out) * (1 - act * act)
        grad_w1 = grad_pre.unsqueeze(-1) * k.unsqueeze(1)
        step = (self.deep_lr * theta)[:, None, None]
        m1 = self.momentum * state["m1"] - step * grad_w1
        m2 = self.momentum * state["m2"] - step * grad_w2
        keep = alpha[:, None, None]
        new = {"w1": keep * state["w1"] + m1, "w2": keep * state["w2"] + m2, "m1": m1, "m2": m2}
        small = err.abs() <= self.huber_delta
        huber = torch.where(small, 0.5 * err**2, self.huber_delta * (err.abs() - 0.5 * self.huber_delta))
        return read, huber.sum(-1), new

    def _mix(self, fast: torch.Tensor, deep: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        mix = mix.unsqueeze(-1)
        return self.out(mix * fast + (1 - mix) * deep)

    def forward_step(self, query: torch.Tensor, state: dict[str, torch.Tensor], reset: torch.Tensor):
        check_query(query, self.query_size, 2, type(self).__name__)
        state = mask_state(state, reset)
        q, k, v, (beta, theta, alpha, mix) = self._project(query)
        fast_read, _, fast = delta_rule_step(state["fast"], q, k, v, beta)
        deep_read, _, deep = self._deep_step(state, q, k, v, theta, alpha)
        return self._mix(fast_read, deep_read, mix), {"fast": fast, **deep}

    def forward_sequence(self, query: torch.Tensor, state: dict[str, torch.Tensor], reset: torch.Tensor):
        check_query(query, self.query_size, 3, type(self).__name__)
        q, k, v, (beta, theta, alpha, mix) = self._project(query)  # all steps at once
        fast_read, prediction, fast = delta_rule_chunked(state["fast"], q, k, v, beta, reset, self.chunk_size)
        deep = {name: state[name] for name in ("w1", "w2", "m1", "m2")}
        deep_reads, deep_losses = [], []
        for t in range(query.shape[1]):
            deep = mask_state(deep, reset[:, t])
            read, loss, deep = self._deep_step(deep, q[:, t], k[:, t], v[:, t], theta[:, t], alpha[:, t])
            deep_reads.append(read)
            deep_losses.append(loss)
        self._stats = {
            "gate_mean": beta.detach().mean(),
            "deep_lr_gate_mean": theta.detach().mean(),
            "retention_mean": alpha.detach().mean(),
            "mix_fast_mean": mix.detach().mean(),
            "inner_loss_fast": 0.5 * (prediction.detach() - v.detach()).pow(2).sum(-1).mean(),
            "inner_loss_deep": torch.stack(deep_losses, 1).detach().mean(),
        }
        return self._mix(fast_read, torch.stack(deep_reads, 1), mix), {"fast": fast, **deep}

    def diagnostics(self) -> dict[str, torch.Tensor]:
        return dict(self._stats)
