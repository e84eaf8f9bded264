"""HorizonCurriculum: lengthen a task's episodes whenever the agent masters the current length."""

from __future__ import annotations

import math
from typing import Any

import lightning as L

from lightning_memrl.callbacks.greedy_evaluation import env_steps, greedy_success, rollout_datamodule, write_summary
from lightning_memrl.envs.registry import get_task_spec
from lightning_memrl.errors import ConfigError


class HorizonCurriculum(L.Callback):
    """Raise the task's horizon by `factor` each time greedy evaluation success reaches `threshold`.

    Every `every_n_iterations` PPO iterations (Lightning epochs) the callback runs its own greedy
    evaluation (`trainer.datamodule.evaluate(pl_module, eval_episodes)`, so it does not depend on
    the validation schedule). When the success rate, averaged over DDP ranks, is at least
    `threshold` and the horizon is below `max_horizon`, the horizon becomes
    `min(max_horizon, round(horizon * factor))` through `RolloutDataModule.update_task`, which
    restarts the episodes in flight and saves the new task arguments in checkpoints. The
    evaluations and raises are kept in `state_dict` (`history`: iteration, env steps, horizon,
    success, new horizon), so a resumed run continues the same schedule. Logs `curriculum/horizon`
    every iteration and `curriculum/success` at each evaluation, and writes the history to
    `curriculum.json` in the log dir when fitting ends (how far the horizon got, and when).

    The item counts (for example `num_cues`) stay fixed: only the horizon may change, since the
    agent's input and output layers depend on the task's spaces.

    Args:
        threshold: evaluation success rate (0..1] that triggers a raise.
        factor: multiplicative step of the horizon (> 1); each raise grows it by at least 1.
        max_horizon: the last horizon (`None`: the horizon configured in the data module, so a
            curriculum leads up to the configured task).
        start_horizon: horizon of the first iteration of a fresh run (`None`: start at the
            configured horizon). Ignored when resuming from a checkpoint.
        every_n_iterations: evaluate after every this many PPO iterations.
        eval_episodes: episodes per evaluation (`None`: the data module's `eval_episodes`).
        stop_at_success: end training once success at `max_horizon` reaches this (`None`: never).
        horizon_key: name of the task argument that sets the episode length.
    """

    def __init__(
        self,
        threshold: float = 0.9,
        factor: float = 1.5,
        max_horizon: int | None = None,
        start_horizon: int | None = None,
        every_n_iterations: int = 5,
        eval_episodes: int | None = None,
        stop_at_success: float | None = None,
        horizon_key: str = "horizon",
    ):
        super().__init__()
        if not 0 < threshold <= 1:
            raise ConfigError(f"HorizonCurriculum.threshold must be in (0, 1], got {threshold}")
        if not factor > 1:
            raise ConfigError(f"HorizonCurriculum.factor must be > 1, got {factor}")
        for name, value in (("max_horizon", max_horizon), ("start_horizon", start_horizon)):
            if value is not None and value < 1:
                raise ConfigError(f"HorizonCurriculum.{name} must be >= 1 or null, got {value}")
        if max_horizon is not None and start_horizon is not None and start_horizon > max_horizon:
            raise ConfigError(
                f"HorizonCurriculum.start_horizon ({start_horizon}) is above max_horizon ({max_horizon}); "
                "a curriculum only raises the horizon: lower start_horizon or raise max_horizon"
            )
        if every_n_iterations < 1:
            raise ConfigError(f"HorizonCurriculum.every_n_iterations must be >= 1, got {every_n_iterations}")
        if eval_episodes is not None and eval_episodes < 1:
            raise ConfigError(f"HorizonCurriculum.eval_episodes must be >= 1 or null, got {eval_episodes}")
        if stop_at_success is not None and not 0 < stop_at_success <= 1:
            raise ConfigError(f"HorizonCurriculum.stop_at_success must be in (0, 1] or null, got {stop_at_success}")
        self.threshold = threshold
        self.factor = factor
        self.max_horizon = max_horizon
        self.start_horizon = start_horizon
        self.every_n_iterations = every_n_iterations
        self.eval_episodes = eval_episodes
        self.stop_at_success = stop_at_success
        self.horizon_key = horizon_key
        self.horizon: int | None = None
        self.history: list[dict[str, Any]] = []
        self._restored = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(threshold=self.threshold, factor=self.factor, horizon_key=self.horizon_key)

    # --- decisions (pure) -------------------------------------------------------------------------
    def next_horizon(self, horizon: int) -> int:
        """The horizon after one raise from `horizon`: `round(horizon * factor)`, capped at the maximum."""
        assert self.max_horizon is not None, "max_horizon is resolved at fit start"
        return min(self.max_horizon, max(horizon + 1, int(round(horizon * self.factor))))

    def should_raise(self, success: float, horizon: int) -> tuple[bool, str]:
        """Whether an evaluation with success rate `success` at `horizon` raises the horizon, and why."""
        assert self.max_horizon is not None, "max_horizon is resolved at fit start"
        if horizon >= self.max_horizon:
            return False, f"horizon {horizon} is already max_horizon {self.max_horizon}"
        if math.isnan(success) or success < self.threshold:
            return False, f"success {success:.3f} < threshold {self.threshold} at horizon {horizon}"
        new = self.next_horizon(horizon)
        return True, f"success {success:.3f} >= threshold {self.threshold}: horizon {horizon} -> {new}"

    def should_stop(self, success: float, horizon: int) -> tuple[bool, str]:
        """Whether training ends: success `stop_at_success` reached at `max_horizon`."""
        if self.stop_at_success is None or self.max_horizon is None or horizon < self.max_horizon:
            return False, ""
        if success >= self.stop_at_success:
            return True, f"success {success:.3f} >= stop_at_success {self.stop_at_success} at max_horizon {horizon}"
        return False, ""

    @property
    def schedule(self) -> list[tuple[int, int, int]]:
        """`(iteration, env_steps, new_horizon)` of every raise so far."""
        return [(h["iteration"], h["env_steps"], h["new_horizon"]) for h in self.history if h["new_horizon"]]

    # --- hooks ------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = self._datamodule(trainer)
        configured = self._task_horizon(dm)
        if self._restored:
            if configured != self.horizon:  # the data module's checkpoint should have restored it
                dm.update_task(**{self.horizon_key: self.horizon})
            return
        if self.max_horizon is None:
            self.max_horizon = configured
        self.horizon = configured
        if self.start_horizon is not None and self.start_horizon != configured:
            if self.start_horizon > self.max_horizon:
                raise ConfigError(
                    f"HorizonCurriculum.start_horizon ({self.start_horizon}) is above the task's horizon "
                    f"({self.max_horizon}), the curriculum's max_horizon; lower start_horizon or set max_horizon"
                )
            dm.update_task(**{self.horizon_key: self.start_horizon})
            self.horizon = self.start_horizon

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("curriculum/horizon", float(self.horizon), batch_size=1)
        iteration = trainer.current_epoch + 1
        if iteration % self.every_n_iterations:
            return
        self._evaluate_and_update(trainer, pl_module, iteration)

    def _evaluate_and_update(self, trainer: L.Trainer, pl_module: L.LightningModule, iteration: int) -> None:
        dm = self._datamodule(trainer)
        success = greedy_success(trainer, pl_module, self.eval_episodes)
        pl_module.log("curriculum/success", success, batch_size=1)
        horizon = self.horizon
        raise_, _ = self.should_raise(success, horizon)
        raise_ = trainer.strategy.reduce_boolean_decision(raise_, all=True)
        stop, _ = self.should_stop(success, horizon)
        new_horizon = self.next_horizon(horizon) if raise_ else None
        record = {
            "iteration": iteration,
            "env_steps": env_steps(trainer),
            "horizon": horizon,
            "success": success,
            "new_horizon": new_horizon,
        }
        self.history.append(record)
        if new_horizon is not None:
            dm.update_task(**{self.horizon_key: new_horizon})
            self.horizon = new_horizon
        if trainer.strategy.reduce_boolean_decision(stop, all=True):
            trainer.should_stop = True

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        summary = {"horizon": self.horizon, "max_horizon": self.max_horizon, "history": self.history}
        write_summary(trainer, "curriculum.json", summary)

    def _datamodule(self, trainer: L.Trainer) -> Any:
        return rollout_datamodule(trainer, "HorizonCurriculum")

    def _task_horizon(self, dm: Any) -> int:
        resolved = get_task_spec(dm.env_name).kwargs(dm.difficulty, **dm.env_kwargs)
        if self.horizon_key not in resolved:
            raise ConfigError(
                f"HorizonCurriculum: task {dm.env_name!r} has no argument {self.horizon_key!r} "
                f"(its arguments: {sorted(resolved)}); set horizon_key to the argument that sets its length"
            )
        return int(resolved[self.horizon_key])

    # --- checkpointing ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"horizon": self.horizon, "max_horizon": self.max_horizon, "history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.horizon = state_dict["horizon"]
        self.max_horizon = state_dict["max_horizon"]
        self.history = [dict(h) for h in state_dict["history"]]
        self._restored = True
