"""Any gymnasium env as a `VectorTask`: `data.env: gym:<id>` (also `gym:module:EnvName`).

The adapter drives a gymnasium vector env in SAME_STEP autoreset mode (gymnasium >= 1.1), which is
the `VectorTask` convention: an env whose episode ends at a step is reset inside that step, the
returned observation is the first of its next episode, and the last observation of the finished
episode comes back as `info["final_observation"]` (to bootstrap a truncated episode). So no step of
the rollout is a "reset step" without a transition: every stored step is a real transition.
(Gymnasium's default NEXT_STEP mode would put a no-op step after each done, on which PPO must not
train; the adapter refuses a vector env in that mode.)

Observations are flattened to `[N, D]` float32 and actions converted by `gym_spaces`; every tensor
lives on the task's device. What an env returns is checked at this boundary (`gym_checks`): an
observation that does not fit its space, an observation or reward that is not finite, or an exception
of the env (in this process or an async worker) is an `EnvError` naming the env, the step, the field
and the copies. Success: where the env's final-step info carries `is_success` or
`success`, `info["success"]` is that; otherwise the adapter's `reports_success` stays false and
evaluation reports return only.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import concatenate, create_empty_array

from lightning_memrl.envs.gym_checks import CheckedEnv, ObservationMismatch, checked_spec, nonfinite_fields
from lightning_memrl.envs.gym_spaces import flatten_batch, to_env_actions
from lightning_memrl.envs.wrappers import WrapperConfig, resolve_wrappers
from lightning_memrl.errors import ConfigError, EnvError
from lightning_memrl.specs import EnvSpec

VECTORIZATION_MODES = ("sync", "async")
SUCCESS_KEYS = ("is_success", "success")


class GymVectorTask:
    """A gymnasium `VectorEnv` behind the `VectorTask` interface (torch tensors on `device`).

    Args:
        vector_env: a gymnasium vector env created with `autoreset_mode=AutoresetMode.SAME_STEP`.
        device: device of the returned tensors (observations, rewards, flags).
        seed: seed of the first `reset()` when it is given none (env i gets `seed + i`).
        name: what errors call the env (default: its gymnasium id).
    """

    #: gymnasium envs cannot be checkpointed: a resumed run starts new episodes (see `state_dict`)
    restorable = False
    #: a step runs the gymnasium env on the host (numpy): no CUDA graph can replay it
    capturable = False

    def __init__(
        self,
        vector_env: gym.vector.VectorEnv,
        device: torch.device | str = "cpu",
        seed: int | None = None,
        name: str | None = None,
    ):
        mode = vector_env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ConfigError(
                f"GymVectorTask needs a vector env with autoreset_mode=AutoresetMode.SAME_STEP, got {mode}; "
                "create it with gymnasium.make_vec(..., vector_kwargs={'autoreset_mode': AutoresetMode.SAME_STEP})"
            )
        self.venv = vector_env
        self.num_envs = vector_env.num_envs
        self.device = torch.device(device)
        self.seed = 0 if seed is None else seed
        self.single_observation_space = vector_env.single_observation_space
        self.single_action_space = vector_env.single_action_space
        env_id = getattr(getattr(vector_env, "spec", None), "id", None)
        self.name = name or env_id or type(vector_env).__name__
        self.vectorization = "async" if isinstance(vector_env, gym.vector.AsyncVectorEnv) else "sync"
        self.env_spec: EnvSpec = checked_spec(self.name, self.single_observation_space, self.single_action_space)
        self.reports_success = False
        self.steps = 0  # vector steps since the env was made: errors name the step
        self._seeded = False

    # --- spaces ---------------------------------------------------------------------------------
    @property
    def observation_size(self) -> int:
        return self.env_spec.observation_size

    @property
    def num_actions(self) -> int | None:
        """Number of actions of a `Discrete` action space (`None` for other action spaces)."""
        return self.env_spec.num_actions

    # --- dynamics -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Start a new episode in every env; `seed` reseeds them (env i gets `seed + i`)."""
        if seed is None and not self._seeded:
            seed = self.seed
        self._seeded = True
        try:
            obs, _ = self.venv.reset(seed=seed)
        except Exception as err:
            raise self._raised(err, "at reset") from err
        flat = flatten_batch(self.single_observation_space, obs, self.num_envs)
        self._check_finite(flat, obs, "at reset")
        return self._tensor(flat), {}

    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Advance every env with `actions` (`[N]` or `[N, M]`); finished envs reset in the same step."""
        env_actions = to_env_actions(self.single_action_space, actions)
        self.steps += 1
        try:
            obs, reward, terminated, truncated, info = self.venv.step(env_actions)
        except Exception as err:
            raise self._raised(err, f"at step {self.steps}") from err
        n, space = self.num_envs, self.single_observation_space
        flat = flatten_batch(space, obs, n)
        self._check_finite(flat, obs, f"at step {self.steps}")
        reward = np.asarray(reward, dtype=np.float32)
        if not np.isfinite(reward).all():
            copies = np.flatnonzero(~np.isfinite(reward))
            raise self._error(
                f"returned a reward that is not finite at step {self.steps}: {reward[copies].tolist()} in copies "
                f"{copies.tolist()}"
            )
        done = np.logical_or(terminated, truncated)
        final = flat.copy()
        success = np.zeros(n, dtype=bool)
        if done.any():
            idx = np.flatnonzero(info.get("_final_obs", done))
            finals = concatenate(space, [info["final_obs"][i] for i in idx], create_empty_array(space, len(idx)))
            final[idx] = flatten_batch(space, finals, len(idx))
            self._check_finite(final[idx], finals, f"at step {self.steps} (the last observation of an episode)", idx)
            success = self._success(info.get("final_info", {}), done)
        return (
            self._tensor(flat),
            self._tensor(reward),
            torch.as_tensor(np.asarray(terminated, dtype=bool), device=self.device),
            torch.as_tensor(np.asarray(truncated, dtype=bool), device=self.device),
            {"final_observation": self._tensor(final), "success": torch.as_tensor(success, device=self.device)},
        )

    def _success(self, final_info: dict[str, Any], done: np.ndarray) -> np.ndarray:
        for key in SUCCESS_KEYS:
            if key in final_info:
                self.reports_success = True
                present = np.asarray(final_info.get(f"_{key}", done), dtype=bool)
                return np.asarray(final_info[key]).astype(bool) & present & done
        return np.zeros_like(done)

    def _check_finite(self, flat: np.ndarray, obs: Any, when: str, copies: np.ndarray | None = None) -> None:
        """`EnvError` naming the fields and copies when the flattened observations hold NaN / inf."""
        if np.isfinite(flat).all():
            return
        fields = nonfinite_fields(self.single_observation_space, obs, len(flat))
        where = "; ".join(
            f"{field} in copies {(np.asarray(rows) if copies is None else copies[rows]).tolist()} (e.g. {example})"
            for field, rows, example in fields
        )
        raise self._error(f"returned an observation that is not finite in float32 {when}: {where}")

    def _raised(self, err: Exception, when: str) -> EnvError:
        if isinstance(err, ObservationMismatch):
            return self._error(f"returned an observation that does not fit its space {when}: {err}")
        error = self._error(f"raised {type(err).__name__} {when}: {err}", fix="Fix the env (its traceback is above)")
        error.env_raised = True
        return error

    def _error(self, what: str, fix: str = "") -> EnvError:
        fix = fix or "Fix the env, or map such values to valid ones in a gymnasium wrapper"
        return EnvError(f"gym env {self.name!r} ({self.vectorization}, {self.num_envs} copies) {what}. {fix}")

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def oracle_action(self) -> torch.Tensor:
        raise NotImplementedError("gymnasium envs have no oracle")

    def close(self) -> None:
        """Close the vector env (ends the worker processes of an async one)."""
        self.venv.close()

    # --- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Gymnasium envs have no portable state: nothing is saved, and a resumed run resets them."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._seeded = False


def make_gym_task(
    env_id: str,
    num_envs: int,
    device: torch.device | str = "cpu",
    seed: int | None = None,
    vectorization: str = "sync",
    wrappers: list[WrapperConfig] | None = None,
    **env_kwargs: Any,
) -> GymVectorTask:
    """Build `num_envs` copies of a gymnasium env (`gymnasium.make(env_id, **env_kwargs)`) as a task.

    Args:
        env_id: any id `gymnasium.make` accepts, including `module:EnvName` (imports `module` first).
        num_envs: envs stepped together.
        device: device of the returned tensors.
        seed: seed of the first reset.
        vectorization: `sync` (one process) or `async` (one worker process per env).
        wrappers: gymnasium wrappers applied to each env copy before vectorisation, in order: class
            paths with optional `init_args` (see `lightning_memrl.envs.wrappers`).
        env_kwargs: keyword arguments of `gymnasium.make`.
    """
    if vectorization not in VECTORIZATION_MODES:
        raise ConfigError(f"data.vectorization must be one of {VECTORIZATION_MODES}, got {vectorization!r}")
    if num_envs < 1:
        raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
    wrap = resolve_wrappers(wrappers)  # imports their packages first: those that register envs on import too
    try:
        venv = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode=vectorization,
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
            wrappers=[*wrap, CheckedEnv],  # checked inside each copy (an async worker too), after its wrappers
            **env_kwargs,
        )
    except (gym.error.Error, ModuleNotFoundError, TypeError) as err:
        raise ConfigError(
            f"gymnasium could not make {env_id!r} with env_kwargs {env_kwargs}: {err}. Check the id "
            "(`module:EnvName` imports `module` to register it) and data.env_kwargs"
        ) from err
    try:
        return GymVectorTask(venv, device, seed, name=env_id)
    except ConfigError:
        venv.close()
        raise
