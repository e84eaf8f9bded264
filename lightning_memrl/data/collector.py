"""Collect rollouts with the current policy, storing the recurrent state of every training sequence.

"Honest" stored states: the state the policy really had before the first step of each training
sequence (and of its burn-in prefix) is kept from acting time, so training replays each sequence
from exactly where acting was. A rollout of `T` steps is cut into `T / seq_len` sequences per env;
episodes cross sequence boundaries and resets happen inside sequences (the `starts` flags carry them).
The burn-in prefix of a rollout's first sequence comes from the end of the previous rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._pytree import tree_flatten

from lightning_memrl.data.cuda_graphs import ActingGraph, write_at
from lightning_memrl.data.gae import compute_gae, explained_variance
from lightning_memrl.data.policy import RecurrentPolicy, acting_in_place
from lightning_memrl.envs.base import VectorTask
from lightning_memrl.specs import env_spec_of
from lightning_memrl.state import State, clone_state, copy_leaves_, map_state, stack_states


@dataclass
class Rollout:
    """One rollout, `[T, N]` per step, plus the stored states `[K, N, ...]` of its K sequences."""

    obs: torch.Tensor  # [burn_in + T, N, D]: previous rollout's last burn_in steps, then this one
    starts: torch.Tensor  # [burn_in + T, N]
    actions: torch.Tensor  # [T, N, *action_shape] (shape and dtype from the env's EnvSpec)
    log_probs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    next_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    sequence_states: State  # [K, N, ...]
    stats: dict[str, torch.Tensor]


class RolloutCollector:
    """Steps a `VectorTask` with a `RecurrentPolicy` and keeps everything needed to continue.

    One acting step (`_step`) reads and writes tensors that stay in place from rollout to rollout: the
    next observations, the recurrent state, the episode counters and the rollout buffers, written at a
    step index held on the device. On a CUDA device that step is captured once as a CUDA graph and
    replayed (`cuda_graphs`, see `data.cuda_graphs`); elsewhere, or where capture is impossible, it runs
    eagerly, the same function. The rollout returned is a copy, so the buffers are free for the next one.

    An env that cannot be checkpointed (`restorable = False`, e.g. a gymnasium env) restarts its
    episodes after `load_state_dict`; counters and the sampling generator still continue.

    Args:
        env: the vectorized task.
        rollout_steps: steps per env per rollout (T).
        seq_len: training sequence length (L); must divide `rollout_steps`.
        burn_in: steps before each sequence that only refresh the state (B < L).
        gamma: discount.
        gae_lambda: GAE lambda.
        seed: seed of the action-sampling generator.
        cuda_graphs: `auto`, `on` or `off`: replay the acting step as a CUDA graph (see `data.cuda_graphs`).
    """

    def __init__(
        self,
        env: VectorTask,
        rollout_steps: int,
        seq_len: int,
        burn_in: int,
        gamma: float,
        gae_lambda: float,
        seed: int = 0,
        cuda_graphs: str = "auto",
    ):
        self.env = env
        self.rollout_steps = rollout_steps
        self.seq_len = seq_len
        self.burn_in = burn_in
        self.gamma = gamma
        self.gae_lambda = gae_lambda
        self.device = env.device
        self.env_spec = env_spec_of(env)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.graph = ActingGraph(cuda_graphs, "acting")
        self.env_steps = 0
        self._started = False

    def replace_env(self, env: VectorTask) -> None:
        """Continue with another task instance (same spaces); its episodes start at the next rollout."""
        if env.num_envs != self.env.num_envs or env.device != self.env.device:
            raise ValueError("replace_env needs the same number of envs on the same device")
        self.env = env
        self.env_spec = env_spec_of(env)
        self._started = False
        self.graph.invalidate()

    # --- state between rollouts -----------------------------------------------------------------
    def _start(self, policy: RecurrentPolicy, seed: int | None) -> None:
        n, b = self.env.num_envs, self.burn_in
        obs, _ = self.env.reset(seed=seed)
        self.next_obs = obs
        self.next_start = torch.ones(n, dtype=torch.bool, device=self.device)
        # Burn-in history before the first rollout: blank steps; step 0 is an episode start anyway.
        self.history_obs = torch.zeros(b, n, obs.shape[-1], device=self.device)
        self.history_starts = torch.ones(b, n, dtype=torch.bool, device=self.device)
        self.history_state = policy.initial_state(n, self.device)
        self.state = clone_state(self.history_state)
        if b:  # acting starts where training's replay of that history ends (an episodic tick counts those steps)
            state = policy.advance_state(self.history_obs.transpose(0, 1), self.state, self.history_starts.T)
            self.state = clone_state(state)  # leaves of their own: acting writes into them
        self.episode_return = torch.zeros(n, device=self.device)
        self.episode_length = torch.zeros(n, dtype=torch.long, device=self.device)
        self._allocate()
        self._started = True

    def _allocate(self) -> None:
        """The buffers one rollout is written into (reused by every rollout; the step's tensors changed,
        so a captured step is forgotten)."""
        T, n, dev, spec = self.rollout_steps, self.env.num_envs, self.device, self.env_spec
        self._buffers = _RolloutBuffers(
            obs=torch.zeros(T, n, self.next_obs.shape[-1], device=dev),
            starts=torch.zeros(T, n, dtype=torch.bool, device=dev),
            actions=torch.zeros(T, n, *spec.action_shape, dtype=spec.action_dtype, device=dev),
            log_probs=torch.zeros(T, n, device=dev),
            values=torch.zeros(T, n, device=dev),
            rewards=torch.zeros(T, n, device=dev),
            terminated=torch.zeros(T, n, dtype=torch.bool, device=dev),
            truncated=torch.zeros(T, n, dtype=torch.bool, device=dev),
            final_values=torch.zeros(T, n, device=dev),
        )
        self._t = torch.zeros(1, dtype=torch.long, device=dev)  # the step being written
        self._finished = torch.zeros(4, device=dev)  # episodes ended this rollout: count, returns, lengths, successes
        self._no_reset = torch.zeros(n, dtype=torch.bool, device=dev)
        self._state_leaves, self._state_spec = tree_flatten(self.state)  # each step's new state is copied in
        self.graph.invalidate()

    def _step_tensors(self) -> list[torch.Tensor]:
        """Every tensor `_step` reads or writes (besides the env's and the policy's own)."""
        per_env = [self.next_obs, self.next_start, self.episode_return, self.episode_length, self._no_reset]
        return [*per_env, *self._state_leaves, *vars(self._buffers).values(), self._t, self._finished]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue collecting exactly (envs, states, generators, counters)."""
        if not self._started:
            return {"started": False, "generator": self.generator.get_state(), "env_steps": self.env_steps}
        return {
            "started": True,
            "env": self.env.state_dict(),
            "generator": self.generator.get_state(),
            "env_steps": self.env_steps,
            # copies: acting keeps writing into these tensors
            "next_obs": self.next_obs.clone(),
            "next_start": self.next_start.clone(),
            "state": clone_state(self.state),
            "history_obs": self.history_obs,
            "history_starts": self.history_starts,
            "history_state": self.history_state,
            "episode_return": self.episode_return.clone(),
            "episode_length": self.episode_length.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.env_steps = state["env_steps"]
        self._started = state["started"] and getattr(self.env, "restorable", True)
        if not self._started:  # never started, or an env without state: start fresh episodes
            return
        self.env.load_state_dict(state["env"])
        to_device = lambda x: x.to(self.device)
        for name in ("next_obs", "next_start", "history_obs", "history_starts", "episode_return", "episode_length"):
            setattr(self, name, state[name].to(self.device))
        self.state = map_state(to_device, state["state"])
        self.history_state = map_state(to_device, state["history_state"])
        self._allocate()

    # --- collection -----------------------------------------------------------------------------
    @property
    def acting(self) -> str:
        """How acting ran in the last rollout: `cuda graph`, or `eager (why)`."""
        return self.graph.ran

    @torch.inference_mode(False)  # the kept tensors stay normal tensors whoever calls
    @torch.no_grad()
    def collect(self, policy: RecurrentPolicy, seed: int | None = None) -> Rollout:
        """Run `rollout_steps` steps in every env with `policy` (sampling) and compute GAE."""
        if not self._started:
            self._start(policy, seed)
        T, L, b = self.rollout_steps, self.seq_len, self.burn_in
        can_truncate = getattr(self.env, "can_truncate", True)  # gym envs do not say: assume they can
        bootstrap = "every_step" if bootstraps_without_sync(self.device) else "when_cut"
        bootstrap = bootstrap if can_truncate else "never"
        self._t.zero_()  # before a capture too: its warm-up steps write at the first steps
        self._finished.zero_()
        self._buffers.final_values.zero_()
        run_step = self.graph.prepare(
            lambda: self._step(policy, bootstrap),
            key=(bootstrap, id(self.env)),
            policy=policy,
            env=self.env,
            device=self.device,
            tensors=self._step_tensors(),
            generators=[self.generator, *filter(None, [getattr(self.env, "generator", None)])],
        )
        sequence_states = [self.history_state]  # sequence 0 starts at the history (burn-in) start
        for t in range(T):
            if (t + b) % L == 0 and t > 0 and t + b < T:
                sequence_states.append(clone_state(self.state))
            if t + b == T and t > 0:
                next_history_state = clone_state(self.state)
            run_step()

        if b == 0:
            next_history_state = clone_state(self.state)
        buffers = _RolloutBuffers(**{name: x.clone() for name, x in vars(self._buffers).items()})
        last_value = policy.predict_value(self.next_obs, self.state, self.next_start)
        next_values = torch.cat([buffers.values[1:], last_value.unsqueeze(0)])
        next_values = torch.where(buffers.truncated, buffers.final_values, next_values)
        advantages, returns = compute_gae(
            buffers.rewards,
            buffers.values,
            next_values,
            buffers.terminated,
            buffers.truncated,
            self.gamma,
            self.gae_lambda,
        )
        policy.end_rollout(advantages, buffers.rewards, buffers.terminated, buffers.truncated)
        count, total_return, total_length, successes = self._finished.clone()
        stats = {
            "episodes": count,
            "episode_return": total_return / count.clamp_min(1),
            "episode_length": total_length / count.clamp_min(1),
            "success_rate": successes / count.clamp_min(1),
            "explained_variance": explained_variance(buffers.values, returns),
            "reward_mean": buffers.rewards.mean(),
        }
        if not getattr(self.env, "reports_success", True):  # an env without a success signal
            del stats["success_rate"]
        rollout = Rollout(
            obs=torch.cat([self.history_obs, buffers.obs]),
            starts=torch.cat([self.history_starts, buffers.starts]),
            actions=buffers.actions,
            log_probs=buffers.log_probs,
            values=buffers.values,
            rewards=buffers.rewards,
            terminated=buffers.terminated,
            truncated=buffers.truncated,
            next_values=next_values,
            advantages=advantages,
            returns=returns,
            sequence_states=stack_states(sequence_states),
            stats=stats,
        )
        self.history_obs = buffers.obs[T - b :].clone()
        self.history_starts = buffers.starts[T - b :].clone()
        self.history_state = next_history_state
        self.env_steps += T * self.env.num_envs
        return rollout

    def _step(self, policy: RecurrentPolicy, bootstrap: str) -> None:
        """One acting step, every result written in place (the function a CUDA graph captures).

        Reads the next observations, episode starts and recurrent state; writes them for the step after,
        and this step's transition into the rollout buffers at the device step index `_t` (then + 1).
        `bootstrap`: `every_step` values every final observation (no host sync), `when_cut` only when an
        env was cut (a sync: eager only), `never` for tasks that cannot truncate.
        """
        buf, t = self._buffers, self._t
        obs, start, state = self.next_obs, self.next_start, self.state
        write_at(buf.obs, t, obs)
        write_at(buf.starts, t, start)
        with acting_in_place(policy):  # the kept state is replaced by the step's anyway
            step = policy.act(obs, state, start, generator=self.generator)
        next_obs, reward, term, trunc, info = self.env.step(step.action)
        new_leaves, spec = tree_flatten(step.state)
        if spec != self._state_spec:
            raise ValueError(f"the policy's state changed structure while acting: {self._state_spec} -> {spec}")
        copy_leaves_(self._state_leaves, new_leaves)
        write_at(buf.actions, t, step.action)
        write_at(buf.log_probs, t, step.log_prob)
        write_at(buf.values, t, step.value)
        write_at(buf.rewards, t, reward)
        write_at(buf.terminated, t, term)
        write_at(buf.truncated, t, trunc)
        if bootstrap == "every_step" or (bootstrap == "when_cut" and bool(trunc.any())):
            final_value = policy.predict_value(info["final_observation"], state, self._no_reset)
            write_at(buf.final_values, t, torch.where(trunc, final_value, 0.0))
        done = term | trunc
        self.episode_return += reward
        self.episode_length += 1
        ended = done.float()  # count, returns, lengths and successes of the episodes that end here
        self._finished += torch.stack(
            [ended, self.episode_return * ended, self.episode_length * ended, info["success"].float()]
        ).sum(1)
        going_on = ~done
        self.episode_return.mul_(going_on)
        self.episode_length.mul_(going_on)
        obs.copy_(next_obs)
        start.copy_(done)
        t += 1


@dataclass
class _RolloutBuffers:
    """One rollout's per-step tensors, `[T, N, ...]` (see `Rollout`); `obs` and `starts` without burn-in."""

    obs: torch.Tensor
    starts: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_values: torch.Tensor


def bootstraps_without_sync(device: torch.device) -> bool:
    """Whether truncation bootstraps are computed every step instead of only when an env was cut.

    On an accelerator, asking whether any env was cut is a host sync per step; there the value of every
    final observation is computed instead (one extra value forward) and kept where cut.
    """
    return device.type != "cpu"


def sequences(rollout: Rollout, seq_len: int, burn_in: int) -> dict[str, Any]:
    """Cut a rollout into `K * N` sequences, `[S, ...]`, sequence `k * N + env` (see `SequenceBatch`)."""
    L, b = seq_len, burn_in

    def windows(x: torch.Tensor, length: int) -> torch.Tensor:
        # x: [length - L + T, N, ...] -> [K * N, length, ...], window k starting at k * L
        w = x.unfold(0, length, L)
        w = w.movedim(-1, 2)  # [K, N, length, ...]
        return w.reshape(-1, *w.shape[2:])

    per_step = {
        "actions": rollout.actions,
        "log_probs": rollout.log_probs,
        "values": rollout.values,
        "advantages": rollout.advantages,
        "returns": rollout.returns,
    }
    out = {name: windows(x, L) for name, x in per_step.items()}
    out["obs"] = windows(rollout.obs, b + L)
    out["starts"] = windows(rollout.starts, b + L)
    out["states"] = map_state(lambda s: s.reshape(-1, *s.shape[2:]), rollout.sequence_states)
    return out
