"""TaskCurriculum: walk any registered task from its easiest setting to the configured difficulty."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L

from lightning_memrl.callbacks.greedy_evaluation import env_steps, greedy_success, rollout_datamodule, write_summary
from lightning_memrl.envs.registry import GYM_PREFIX, get_task_spec
from lightning_memrl.envs.schedule import task_schedule, walked_knobs
from lightning_memrl.errors import ConfigError


class TaskCurriculum(L.Callback):
    """Train through the stages of `lightning_memrl.envs.schedule.task_schedule`, up to the configured task.

    The configured task (`data.env`, `data.difficulty`, `data.env_kwargs`) is the target. At the start of
    a fresh run the callback builds the schedule from the task registry alone (no per-task file): every
    knob the presets change walks from the easiest setting (the horizon from `start_horizon`) to the
    target, through the presets in between, the horizon growing by at most `factor` per stage; knobs
    that set the observation or action size stay at the target's value throughout.

    At the end of the first PPO iteration at least `every_n_env_steps` env steps (all ranks) after the last
    evaluation, it runs a greedy evaluation on the current stage (averaged over DDP ranks; the decisions
    go through `reduce_boolean_decision`, so every rank moves together).
    Below the last stage, success >= `threshold` moves to the next stage (`RolloutDataModule.update_task`),
    which is evaluated at once, and so on while stages pass: a skill that carries over costs no training.
    At the last stage, success >= `target_success` is the target reached: its env steps (all ranks) and
    training wall time (summed over resumed fits) are kept, and with `stop_at_target` training ends.
    With `probe_target`, a round that stops below the target at a success under `threshold` but at least
    `target_success` (the task's own bar) also evaluates the target itself; if that meets `target_success`
    the curriculum moves there, the target reached. The threshold guards what a raise carries up; it must
    not keep an agent that already solves the configured task at an easier stage.

    The schedule, stage, evaluation history and time to target are in `state_dict`, so a resumed run
    continues the same schedule exactly. Logs `curriculum/stage` and `curriculum/<knob>` each iteration,
    `curriculum/success` and `curriculum/target_reached` at each evaluation; writes `curriculum.json`
    when fitting ends. `ResultsJson` runs the final evaluation on its target task (so `success_rate` in
    `results.json` is measured on the configured task, wherever the curriculum got; training and
    checkpoints stay at the stage) and adds `target_success`, `env_steps_to_target`, `wall_s_to_target`
    (null if never reached) and `curriculum_stage` / `curriculum_stages` / `curriculum_task` (how far it got).

    Args:
        threshold: greedy success that moves a stage below the target to the next (0.95: raising at 0.9
            carried nearly-merged answers up to the target, where they stayed merged).
        factor: largest horizon growth per stage (> 1).
        start_horizon: horizon of the first stage (raised to the task's minimum for its item counts).
        start: first-stage values of walked knobs (for example `{num_pairs: 8}`), overriding the easiest preset.
        target_success: success that counts as solved at the target (`None`: the registry's
            `target_success` for `data.difficulty`).
        every_n_env_steps: evaluate at the end of the first iteration at least this many env steps (all
            ranks) after the last evaluation: 81,920 is every 5 iterations of 64 envs x 256 steps, and
            every iteration at 1,024 envs, so one setting suits the CPU and the GPU scale.
        eval_episodes: episodes per evaluation (`None`: the data module's `eval_episodes`).
        stop_at_target: end training once the target reaches `target_success`.
        probe_target: evaluate the target after a near pass below it (see above). On the GPU suite an agent held
            permuted_copy's first stage (horizon 30) at 0.91 greedy success (under 0.95) while it solved the configured
            task at 0.875 (0.85 asked).
    """

    def __init__(
        self,
        threshold: float = 0.95,
        factor: float = 1.5,
        start_horizon: int = 10,
        start: dict[str, int] | None = None,
        target_success: float | None = None,
        every_n_env_steps: int = 81920,
        eval_episodes: int | None = None,
        stop_at_target: bool = True,
        probe_target: bool = True,
    ):
        super().__init__()
        if not 0 < threshold <= 1:
            raise ConfigError(f"TaskCurriculum.threshold must be in (0, 1], got {threshold}")
        if not factor > 1:
            raise ConfigError(f"TaskCurriculum.factor must be > 1, got {factor}")
        if start_horizon < 1:
            raise ConfigError(f"TaskCurriculum.start_horizon must be >= 1, got {start_horizon}")
        if target_success is not None and not 0 < target_success <= 1:
            raise ConfigError(f"TaskCurriculum.target_success must be in (0, 1] or null, got {target_success}")
        if every_n_env_steps < 1:
            raise ConfigError(f"TaskCurriculum.every_n_env_steps must be >= 1, got {every_n_env_steps}")
        if eval_episodes is not None and eval_episodes < 1:
            raise ConfigError(f"TaskCurriculum.eval_episodes must be >= 1 or null, got {eval_episodes}")
        self.threshold = threshold
        self.factor = factor
        self.start_horizon = start_horizon
        self.start = dict(start) if start else None
        self.target_success = target_success
        self.every_n_env_steps = every_n_env_steps
        self.eval_episodes = eval_episodes
        self.stop_at_target = stop_at_target
        self.probe_target = probe_target
        self.stages: list[dict[str, Any]] | None = None
        self.knobs: list[str] = []
        self.stage = 0
        self.history: list[dict[str, Any]] = []
        self.reached: dict[str, Any] | None = None  # the first evaluation that met the target
        self.last_evaluation = 0  # env steps (all ranks) at the last evaluation
        self._wall_before = 0.0  # training wall time of earlier fits (resumed runs)
        self._fit_started: float | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(threshold=self.threshold, factor=self.factor)

    # --- decisions (pure) -------------------------------------------------------------------------
    @property
    def at_target(self) -> bool:
        """Whether the current stage is the target task."""
        assert self.stages is not None, "the schedule is built at fit start"
        return self.stage == len(self.stages) - 1

    def should_raise(self, success: float) -> tuple[bool, str]:
        """Whether an evaluation with success rate `success` at the current stage moves to the next, and why."""
        if self.at_target:
            return False, f"stage {self.stage} is the target"
        if math.isnan(success) or success < self.threshold:
            return False, f"success {success:.3f} < threshold {self.threshold} at stage {self.stage}"
        return True, f"success {success:.3f} >= threshold {self.threshold}: stage {self.stage} -> {self.stage + 1}"

    def target_met(self, success: float) -> tuple[bool, str]:
        """Whether `success` at the current stage is the target task solved."""
        if not self.at_target:
            return False, f"stage {self.stage} is below the target"
        if not self._meets_target_success(success):
            return False, f"success {success:.3f} < target_success {self.target_success} at the target"
        return True, f"success {success:.3f} >= target_success {self.target_success} at the target"

    def should_probe(self, success: float) -> tuple[bool, str]:
        """Whether a round that stopped at the current stage with `success` also evaluates the target, and why."""
        if not self.probe_target:
            return False, "probe_target is off"
        if self.at_target:
            return False, f"stage {self.stage} is the target"
        if not self._meets_target_success(success):
            return False, f"success {success:.3f} < target_success {self.target_success} at stage {self.stage}"
        return True, f"success {success:.3f} >= target_success {self.target_success}: the target is evaluated"

    def _meets_target_success(self, success: float) -> bool:
        return not math.isnan(success) and success >= self.target_success

    # --- hooks ------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = rollout_datamodule(trainer, "TaskCurriculum")
        self._fit_started = time.perf_counter()
        if self.stages is None:  # a fresh run (a restored or continued one keeps its schedule)
            self._build(dm)
        if dm.env_kwargs != self.stages[self.stage]:
            dm.update_task(**self.stages[self.stage])

    def _build(self, dm: Any) -> None:
        if dm.env_name.startswith(GYM_PREFIX):
            raise ConfigError(
                f"TaskCurriculum walks registered tasks by their difficulty presets; {dm.env_name!r} has none "
                "(use HorizonCurriculum with horizon_key, or a registered task)"
            )
        spec = get_task_spec(dm.env_name)
        if self.target_success is None:
            if dm.difficulty is None:
                raise ConfigError(
                    "TaskCurriculum needs a target success: set data.difficulty (its registered target_success "
                    "is used) or TaskCurriculum.target_success"
                )
            self.target_success = spec.target_success[dm.difficulty]
        target = spec.kwargs(dm.difficulty, **dm.env_kwargs)
        self.stages = task_schedule(
            dm.env_name, target, start_horizon=self.start_horizon, start=self.start, factor=self.factor
        )
        self.knobs = walked_knobs(spec)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("curriculum/stage", float(self.stage), batch_size=1)
        for knob in self.knobs:
            pl_module.log(f"curriculum/{knob}", float(self.stages[self.stage][knob]), batch_size=1)
        if env_steps(trainer) - self.last_evaluation < self.every_n_env_steps:
            return
        self._evaluate_and_update(trainer, pl_module, trainer.current_epoch + 1)

    def _evaluate_and_update(self, trainer: L.Trainer, pl_module: L.LightningModule, iteration: int) -> None:
        """Evaluate the current stage; after a raise, evaluate the new stage at once (what the agent already
        does at the next stage costs no more training), until a stage is not passed or the target is met.
        Logs the last evaluation's success (the stage the round stopped at; every one is in `history`)."""
        self.last_evaluation = env_steps(trainer)
        raise_ = True
        while raise_:
            success = greedy_success(trainer, pl_module, self.eval_episodes)
            raise_ = trainer.strategy.reduce_boolean_decision(self.should_raise(success)[0], all=True)
            met = trainer.strategy.reduce_boolean_decision(self.target_met(success)[0], all=True)
            record = self._record(trainer, iteration, self.stage, success, raised=raise_)
            if met:
                self._target_reached(trainer, record)
            if raise_:
                self.stage += 1
                trainer.datamodule.update_task(**self.stages[self.stage])
        # probe_target is the same on every rank: without it no rank joins the decision
        if self.probe_target and trainer.strategy.reduce_boolean_decision(self.should_probe(success)[0], all=True):
            self._probe_target(trainer, pl_module, iteration)
        pl_module.log("curriculum/success", success, batch_size=1)
        pl_module.log("curriculum/target_reached", float(self.reached is not None), batch_size=1)

    def _probe_target(self, trainer: L.Trainer, pl_module: L.LightningModule, iteration: int) -> None:
        """Evaluate the target task; where it meets `target_success`, move there: the target is reached."""
        last = len(self.stages) - 1
        success = greedy_success(trainer, pl_module, self.eval_episodes, task=self.stages[last])
        met = trainer.strategy.reduce_boolean_decision(self._meets_target_success(success), all=True)
        record = self._record(trainer, iteration, last, success, raised=False, probed_from=self.stage)
        if not met:
            return
        self.stage = last
        trainer.datamodule.update_task(**self.stages[last])
        self._target_reached(trainer, record)

    def _record(self, trainer: L.Trainer, iteration: int, stage: int, success: float, **extra: Any) -> dict[str, Any]:
        """One evaluation's entry of `history`, appended and returned."""
        record = {
            "iteration": iteration,
            "env_steps": env_steps(trainer),
            "wall_s": round(self.wall_s, 3),
            "stage": stage,
            "success": success,
            **extra,
        }
        self.history.append(record)
        return record

    def _target_reached(self, trainer: L.Trainer, record: dict[str, Any]) -> None:
        """Keep the first evaluation that met the target (`reached`) and, with `stop_at_target`, end training."""
        if self.reached is None:
            self.reached = dict(record)
        if self.stop_at_target:
            trainer.should_stop = True

    @property
    def wall_s(self) -> float:
        """Training wall time so far, summed over the fits of a resumed run."""
        running = time.perf_counter() - self._fit_started if self._fit_started is not None else 0.0
        return self._wall_before + running

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._wall_before, self._fit_started = self.wall_s, None
        write_summary(trainer, "curriculum.json", self.state_dict())

    # --- what ResultsJson asks --------------------------------------------------------------------
    def final_evaluation_task(self) -> dict[str, Any] | None:
        """The target task: the final evaluation measures the configured task, wherever the curriculum got."""
        return dict(self.stages[-1]) if self.stages is not None else None

    def results_fields(self) -> dict[str, Any]:
        """Time to target and how far the curriculum got, for `results.json`."""
        if self.stages is None:
            return {}
        reached = self.reached or {}
        last = next((h["success"] for h in reversed(self.history) if h["stage"] == self.stage), None)
        return {
            "target_success": self.target_success,
            "env_steps_to_target": reached.get("env_steps"),
            "wall_s_to_target": reached.get("wall_s"),
            "curriculum_stage": self.stage + 1,
            "curriculum_stages": len(self.stages),
            "curriculum_task": dict(self.stages[self.stage]),
            "curriculum_success": last,
        }

    # --- checkpointing ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "stages": [dict(s) for s in self.stages] if self.stages is not None else None,
            "knobs": list(self.knobs),
            "stage": self.stage,
            "target_success": self.target_success,
            "history": [dict(h) for h in self.history],
            "reached": dict(self.reached) if self.reached is not None else None,
            "last_evaluation": self.last_evaluation,
            "wall_s": self.wall_s,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stages = [dict(s) for s in state_dict["stages"]] if state_dict["stages"] is not None else None
        self.knobs = list(state_dict["knobs"])
        self.stage = state_dict["stage"]
        self.target_success = state_dict["target_success"]
        self.history = [dict(h) for h in state_dict["history"]]
        self.reached = dict(state_dict["reached"]) if state_dict["reached"] is not None else None
        self.last_evaluation = state_dict["last_evaluation"]
        self._wall_before = state_dict["wall_s"]
