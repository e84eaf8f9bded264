"""The agent's previous action as part of its observation: `data.previous_action: true`.

`PreviousActionObservation(task)` appends the action taken at the step before to every observation:
a one-hot per component for discrete and multi-discrete actions, the values themselves for binary and
box actions, and zeros at the first step of an episode (after `reset`, and in the rows an episode
ended in: the new episode's first observation knows nothing of the last episode's actions).

An agent that answers over several steps can then see what it answered last: a copy or a pattern
completion chains each answer on the one before (an entry keyed by token k names the token that
followed k), and a searching walker sees which way it was going. It is the "previous action" input of
R2D2 and RL^2 agents. The wrapper holds no state of its own: what it appends comes from the actions
`step` is given, so checkpoints, stored-state replay and CUDA graph capture are the wrapped task's.
The observation spec gains a last `vector` part named `previous_action` (an exported policy's sidecar
lists it; `examples/run_exported_policy.py` fills it in).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F

from lightning_memrl.specs import ObservationPart, env_spec_of

#: the name of the appended observation part (the last of `EnvSpec.observation`)
PART_NAME = "previous_action"


class PreviousActionObservation:
    """A task whose observations end with the previous action (zeros at an episode's first step).

    Everything but `reset`, `step` and the observation's size and spec is the wrapped task's own (its
    attributes are read through), so it stands wherever the task did.

    Args:
        task: a `VectorTask`, or a `GymVectorTask` (any action space).
    """

    def __init__(self, task: Any):
        self.task = task
        inner = env_spec_of(task)
        self._action_kind = inner.action_kind
        self._action_sizes = inner.sizes
        discrete = inner.action_kind in ("discrete", "multi_discrete")
        self.added_size = sum(inner.sizes) if discrete else inner.sizes[0]
        # a `vector` part (a one-hot through the encoder's projection is an embedding): a plain observation
        # stays plain and keeps the flat encoder
        part = ObservationPart(PART_NAME, "vector", (self.added_size,))
        self.env_spec = dataclasses.replace(
            inner, observation_size=inner.observation_size + part.size, observation=(*inner.parts, part)
        )

    def __getattr__(self, name: str) -> Any:
        # only called for what the wrapper does not define: the task's attributes and methods
        if name == "task":  # not yet set (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.task, name)

    @property
    def observation_size(self) -> int:
        return self.env_spec.observation_size

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        """`actions` (`[N]` or `[N, C]`) as the appended columns `[N, added_size]`, float32: a one-hot per
        component of (multi-)discrete actions, the values of binary and box actions."""
        components = actions.reshape(actions.shape[0], -1)  # a discrete action is one component
        if self._action_kind in ("discrete", "multi_discrete"):
            columns = [F.one_hot(components[:, i].long(), size) for i, size in enumerate(self._action_sizes)]
            return torch.cat(columns, dim=-1).float()
        return components.float()

    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        obs, info = self.task.reset(seed=seed)
        return torch.cat([obs, obs.new_zeros(obs.shape[0], self.added_size)], dim=-1), info

    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step the task with `actions`; the observations gain the actions (zeroed where an episode ended)."""
        obs, reward, terminated, truncated, info = self.task.step(actions)
        taken = self.encode(actions.to(obs.device))
        continues = ~(terminated | truncated)
        info = dict(info)
        if "final_observation" in info:  # the finished episode's last observation saw its last action
            info["final_observation"] = torch.cat([info["final_observation"], taken], dim=-1)
        return torch.cat([obs, taken * continues[:, None]], dim=-1), reward, terminated, truncated, info


def with_previous_action(task: Any, on: bool) -> Any:
    """`task` wrapped in `PreviousActionObservation` when `on`, else `task` itself."""
    return PreviousActionObservation(task) if on else task
