"""A stateless acting step of a trained agent, the module that `memrl export` writes.

`PolicyStep(agent)(obs, state, reset) -> (action, logits, value, next_state)`:

- `obs [N, observation_size]` float32, flattened as the env adapter does;
- `state [N, state_size]` float32: every leaf of the agent's recurrent state, flattened and
  concatenated (zeros: a fresh episode);
- `reset [N]` bool: true where an episode starts at this step (zeroes the state first);
- `action`: the greedy action, `[N]` long (discrete), `[N, M]` long (multi-discrete) or `[N, d]`
  float (binary, box);
- `logits [N, head_size]` float32: the policy head's output (masked logits where the observation
  has an `action_mask`; the means of box actions);
- `value [N]` float32, return scale; `next_state [N, state_size]` float32.

The caller keeps `state` between steps, so the module holds none: it exports with `torch.export`
and ONNX, and runs without this library. Sampling instead of the greedy action: draw from
`softmax(logits)` (discrete).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from lightning_memrl.encoders import action_mask


class PolicyStep(nn.Module):
    """The greedy acting step of `agent` (a `RecurrentPPO`) with its state as one flat tensor."""

    def __init__(self, agent: nn.Module):
        super().__init__()
        self.agent = agent
        self.eval()
        leaves, self._spec = tree_flatten(agent.initial_state(1, "cpu"))
        self._shapes = [tuple(leaf.shape[1:]) for leaf in leaves]
        self._dtypes = [leaf.dtype for leaf in leaves]
        self.state_size = sum(math.prod(s) for s in self._shapes)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """`[batch_size, state_size]` zeros: the state of fresh episodes."""
        return torch.zeros(batch_size, self.state_size)

    def _unpack(self, state: torch.Tensor) -> object:
        leaves, start = [], 0
        for shape, dtype in zip(self._shapes, self._dtypes, strict=True):
            size = math.prod(shape)
            leaves.append(state[:, start : start + size].reshape(-1, *shape).to(dtype))
            start += size
        return tree_unflatten(leaves, self._spec)

    def _pack(self, state: object) -> torch.Tensor:
        leaves, _ = tree_flatten(state)
        return torch.cat([leaf.reshape(leaf.shape[0], -1).float() for leaf in leaves], dim=-1)

    def forward(
        self, obs: torch.Tensor, state: torch.Tensor, reset: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        agent = self.agent
        features, next_state = agent._features_step(obs, self._unpack(state), reset)
        mask = action_mask(obs, agent.env_spec)
        logits = agent.actor.masked(features, mask)
        action = agent.actor.distribution(features, mask).mode()
        return action, logits.float(), agent._return_scale_value(features), self._pack(next_state)
