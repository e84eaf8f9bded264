"""Greedy evaluation episodes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lightning_memrl.data.cuda_graphs import ActingGraph
from lightning_memrl.data.policy import RecurrentPolicy, acting_in_place
from lightning_memrl.envs.base import VectorTask
from lightning_memrl.state import State, clone_state, copy_state_, same_layout, state_leaves


@dataclass
class _EvaluationTensors:
    """What an evaluation step reads and writes in place (`[N]` per env unless said)."""

    obs: torch.Tensor  # [N, D]
    start: torch.Tensor
    state: State
    counted: torch.Tensor  # episodes counted so far, long
    episode_return: torch.Tensor
    episode_length: torch.Tensor
    totals: torch.Tensor  # [3]: return, length and successes of the counted episodes
    quota: torch.Tensor  # [] long: episodes to count per env

    def leaves(self) -> list[torch.Tensor]:
        rest = [self.counted, self.episode_return, self.episode_length, self.totals, self.quota]
        return [self.obs, self.start, *state_leaves(self.state), *rest]


class Evaluator:
    """Runs evaluation episodes on one env; on CUDA its step is replayed as a CUDA graph where it can be.

    The step's tensors are kept from call to call (the env resets in place, the policy's initial state is
    copied in), so a graph captured at the first evaluation serves the later ones.

    Args:
        env: the evaluation task.
        cuda_graphs: `auto`, `on` or `off` (see `data.cuda_graphs`).
    """

    def __init__(self, env: VectorTask, cuda_graphs: str = "off"):
        self.env = env
        self.graph = ActingGraph(cuda_graphs, "evaluation")
        self._tensors: _EvaluationTensors | None = None

    @property
    def acting(self) -> str:
        """How the last evaluation stepped: `cuda graph`, or `eager (why)`."""
        return self.graph.ran

    @torch.inference_mode(False)  # Lightning validates under inference mode: the kept tensors stay normal
    @torch.no_grad()
    def __call__(
        self,
        policy: RecurrentPolicy,
        num_episodes: int,
        seed: int = 0,
        greedy: bool = True,
        max_steps: int = 1_000_000,
    ) -> dict[str, torch.Tensor]:
        """Run `num_episodes` episodes (the first `ceil(num_episodes / N)` of each env) from a fresh reset.

        Counting the first episodes of every env, rather than whichever finish first, keeps short
        episodes from being over-represented.

        Returns:
            `success_rate`, `return_mean`, `length_mean` and `episodes`, as 0-dim tensors; no
            `success_rate` when the env reports no success (`env.reports_success` false, e.g. a
            gymnasium env whose info has no `is_success`).
        """
        env = self.env
        n, dev = env.num_envs, env.device
        obs, _ = env.reset(seed=seed)
        s = self._fresh(obs, policy.initial_state(n, dev), math.ceil(num_episodes / n))
        run_step = self.graph.prepare(
            lambda: self._step(policy, greedy),
            key=(greedy, id(env)),
            policy=policy,
            env=env,
            device=dev,
            tensors=s.leaves(),
            generators=list(filter(None, [getattr(env, "generator", None)])),
        )
        for step in range(max_steps):
            run_step()
            if step % 64 == 63 and bool((s.counted >= s.quota).all()):
                break
        episodes = s.counted.sum().clamp_min(1)
        total_return, total_length, total_success = s.totals.clone()
        metrics = {
            "success_rate": total_success / episodes,
            "return_mean": total_return / episodes,
            "length_mean": total_length / episodes,
            "episodes": s.counted.sum().float(),
        }
        if not getattr(env, "reports_success", True):
            del metrics["success_rate"]
        return metrics

    def _fresh(self, obs: torch.Tensor, state: State, quota: int) -> _EvaluationTensors:
        """The step's tensors at the start of an evaluation: the same tensors as last time where they fit."""
        s = self._tensors
        if s is None or s.obs.shape != obs.shape or not same_layout(s.state, state):
            n = obs.shape[0]
            s = _EvaluationTensors(
                obs=torch.empty_like(obs),
                start=torch.empty(n, dtype=torch.bool, device=obs.device),
                state=clone_state(state),  # leaves of their own: each step writes into them
                counted=torch.empty(n, dtype=torch.long, device=obs.device),
                episode_return=torch.empty(n, device=obs.device),
                episode_length=torch.empty(n, device=obs.device),
                totals=torch.empty(3, device=obs.device),
                quota=torch.empty((), dtype=torch.long, device=obs.device),
            )
            self._tensors = s
            self.graph.invalidate()
        s.obs.copy_(obs)
        copy_state_(s.state, state)
        s.start.fill_(True)
        for zeroed in (s.counted, s.episode_return, s.episode_length, s.totals):
            zeroed.zero_()
        s.quota.fill_(quota)
        return s

    def _step(self, policy: RecurrentPolicy, greedy: bool) -> None:
        """One evaluation step on `_tensors`, in place (the function a CUDA graph captures)."""
        s = self._tensors
        with acting_in_place(policy):  # the kept state is replaced by the step's anyway
            act = policy.act(s.obs, s.state, s.start, greedy=greedy)
        obs, reward, term, trunc, info = self.env.step(act.action)
        copy_state_(s.state, act.state)
        done = term | trunc
        s.episode_return += reward
        s.episode_length += 1
        counts = done & (s.counted < s.quota)
        ended = [(s.episode_return * counts).sum(), (s.episode_length * counts).sum(), (info["success"] & counts).sum()]
        s.totals += torch.stack([x.float() for x in ended])
        s.counted += counts.long()
        s.episode_return.mul_(~done)
        s.episode_length.mul_(~done)
        s.obs.copy_(obs)
        s.start.copy_(done)


def evaluate(
    policy: RecurrentPolicy,
    env: VectorTask,
    num_episodes: int,
    seed: int = 0,
    greedy: bool = True,
    max_steps: int = 1_000_000,
) -> dict[str, torch.Tensor]:
    """`Evaluator(env)(policy, num_episodes, seed, greedy, max_steps)`, stepped eagerly (see `Evaluator`)."""
    return Evaluator(env)(policy, num_episodes, seed=seed, greedy=greedy, max_steps=max_steps)
