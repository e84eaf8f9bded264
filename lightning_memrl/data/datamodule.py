"""RolloutDataModule: each Lightning epoch is one PPO iteration.

The train dataloader's iterator collects `rollout_steps` steps from `num_envs` envs with the current
policy (no grad, on the module's device), computes GAE, then yields sequence minibatches for
`update_epochs` passes. Validation and test dataloaders run greedy evaluation episodes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, IterableDataset

from lightning_memrl.data.batch import SequenceBatch
from lightning_memrl.data.collector import RolloutCollector, sequences
from lightning_memrl.data.cuda_graphs import check_cuda_graphs
from lightning_memrl.data.evaluation import Evaluator
from lightning_memrl.data.policy import RecurrentPolicy
from lightning_memrl.envs.base import VectorTask
from lightning_memrl.envs.gym_adapter import VECTORIZATION_MODES
from lightning_memrl.envs.previous_action import with_previous_action
from lightning_memrl.envs.registry import GYM_PREFIX, make_task
from lightning_memrl.errors import ConfigError
from lightning_memrl.specs import EnvSpec, env_spec_of
from lightning_memrl.state import index_state

# Lightning's DataLoader advice that does not apply to these loaders: they yield rollouts collected in this
# process by the policy on its device (no worker processes to add), and their `__len__` is exact (one
# iteration's minibatches, one evaluation). And torch 2.13's deprecation of `LeafSpec`, which Lightning's batch
# flattening still builds: nothing a user of this library can change.
INAPPLICABLE_WARNINGS = (
    r"The '\w+' does not have many workers",
    r"Your `IterableDataset` has `__len__` defined",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)


def _silence_inapplicable_lightning_warnings() -> None:
    for message in INAPPLICABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


class RolloutDataModule(L.LightningDataModule):
    """Collects rollouts with the agent being trained and serves PPO sequence minibatches.

    Args:
        env: a registered task name (see `lightning_memrl.envs.task_names()`), or `gym:<id>` for
            any gymnasium env (`gym:CartPole-v1`; `gym:module:EnvName` imports `module` first).
        env_kwargs: keyword arguments of the task (for example `horizon`, `num_cues`); for a
            `gym:` env, the keyword arguments of `gymnasium.make`.
        difficulty: a difficulty preset of the task (`easy`, `medium`, `hard`, `extreme`);
            `env_kwargs` override it. Built-in tasks only: with a `gym:<id>` env it is ignored, with a
            note (so a built-in task's config takes `--data.env gym:<id>` alone).
        num_envs: envs collected in parallel (per DDP rank).
        rollout_steps: steps per env per PPO iteration.
        seq_len: length of a training sequence (truncated-BPTT window); divides `rollout_steps`.
        burn_in: steps replayed before each sequence without loss or gradient to refresh its
            stored state with the current parameters; `< seq_len`.
        num_minibatches: minibatches per update epoch (as CleanRL's `num_minibatches`): the iteration's
            `num_envs * rollout_steps / seq_len` sequences split evenly, so it must divide that number;
            the minibatch size follows (`minibatch_size` after construction) and changes with `num_envs`.
        minibatch_size: deprecated (it had to change with `num_envs`): env steps per minibatch, a
            multiple of `seq_len` dividing `num_envs * rollout_steps`; when given it sets `num_minibatches`,
            with a warning naming the value to use instead.
        update_epochs: passes over each rollout.
        gamma: discount.
        gae_lambda: GAE lambda.
        seed: seed of envs, action sampling and minibatch order (DDP rank r uses `seed + 1000 * r`).
        eval_envs: envs used for greedy evaluation.
        eval_episodes: episodes per evaluation.
        vectorization: how a `gym:` env's copies run: `sync` (in this process) or `async` (one
            worker process each); built-in tasks always step in tensors (`sync`).
        wrappers: gymnasium wrappers of each `gym:` env copy, applied in order before vectorisation:
            a list of `{class_path: ..., init_args: {...}}` (e.g. `minigrid.wrappers.ImgObsWrapper`,
            `gymnasium.wrappers.FrameStackObservation` with `stack_size`); see `lightning_memrl.envs.wrappers`.
        cuda_graphs: replay the acting step (policy, env step, bookkeeping) of collection and evaluation as
            a CUDA graph: `auto` (on a CUDA device where it can be captured, else eager: quietly on a CPU,
            with a warning naming the reason on CUDA), `on` (the same, with a warning wherever it cannot),
            `off` (always eager). `acting` says what ran.
        previous_action: append the action of the step before to every observation (one-hot for discrete
            actions; zeros at an episode's first step), the "previous action" input of R2D2 and RL^2 agents:
            an agent answering over several steps sees its last answer (see
            `lightning_memrl.envs.previous_action`).
    """

    def __init__(
        self,
        env: str = "delayed_cue",
        env_kwargs: dict[str, Any] | None = None,
        difficulty: str | None = None,
        num_envs: int = 256,
        rollout_steps: int = 128,
        seq_len: int = 128,
        burn_in: int = 0,
        num_minibatches: int = 4,
        minibatch_size: int | None = None,
        update_epochs: int = 4,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        seed: int = 0,
        eval_envs: int = 256,
        eval_episodes: int = 256,
        vectorization: str = "sync",
        wrappers: list[dict[str, Any]] | None = None,
        cuda_graphs: str = "auto",
        previous_action: bool = False,
    ):
        super().__init__()
        self.env_name = env
        self.env_kwargs = dict(env_kwargs or {})
        if env.startswith(GYM_PREFIX) and difficulty is not None:
            rank_zero_info(
                f"memrl: data.difficulty {difficulty!r} is a preset of the built-in tasks; ignored for {env!r} "
                "(configure it through data.env_kwargs)"
            )
            difficulty = None
        self.difficulty = difficulty
        self.num_envs = num_envs
        self.rollout_steps = rollout_steps
        self.seq_len = seq_len
        self.burn_in = burn_in
        self.num_minibatches = num_minibatches
        self.minibatch_size = minibatch_size
        self.update_epochs = update_epochs
        self.gamma = gamma
        self.gae_lambda = gae_lambda
        self.seed = seed
        self.eval_envs = eval_envs
        self.eval_episodes = eval_episodes
        self.vectorization = vectorization
        self.wrappers = list(wrappers or [])
        self.cuda_graphs = cuda_graphs
        self.previous_action = previous_action
        self._check_shapes()
        self.env_spec = self._probe_spec(self.env_kwargs)
        self.collector: RolloutCollector | None = None
        self.eval_env: VectorTask | None = None
        self._evaluator: Evaluator | None = None
        self.iteration = 0
        self.collect_seconds = 0.0
        self._pending_state: dict[str, Any] | None = None

    def _check_shapes(self) -> None:
        steps = self.num_envs * self.rollout_steps
        if self.rollout_steps % self.seq_len:
            raise ConfigError(f"data.seq_len ({self.seq_len}) must divide data.rollout_steps ({self.rollout_steps})")
        if not 0 <= self.burn_in < self.seq_len:
            raise ConfigError(
                f"data.burn_in ({self.burn_in}) must be >= 0 and < data.seq_len ({self.seq_len}): burn-in "
                "steps only refresh the state before a sequence; lower burn_in or raise seq_len"
            )
        if self.minibatch_size is not None:
            self.num_minibatches = self._minibatches_from_size(steps)
        sequences = steps // self.seq_len
        if self.num_minibatches < 1 or sequences % self.num_minibatches:
            divisors = [d for d in range(1, sequences + 1) if sequences % d == 0]
            nearest = sorted(divisors, key=lambda d: (abs(d - self.num_minibatches), d))[:2]
            raise ConfigError(
                f"data.num_minibatches ({self.num_minibatches}) must divide the {sequences} training sequences of "
                f"an iteration (num_envs {self.num_envs} x rollout_steps {self.rollout_steps} / seq_len "
                f"{self.seq_len}); use {' or '.join(map(str, sorted(nearest)))}, or a num_envs that makes the "
                f"sequences a multiple of {self.num_minibatches}"
            )
        self.minibatch_size = steps // self.num_minibatches
        if self.update_epochs < 1:
            raise ConfigError(f"data.update_epochs must be >= 1, got {self.update_epochs}")
        if self.vectorization not in VECTORIZATION_MODES:
            raise ConfigError(f"data.vectorization must be one of {VECTORIZATION_MODES}, got {self.vectorization!r}")
        check_cuda_graphs(self.cuda_graphs)

    def _minibatches_from_size(self, steps: int) -> int:
        """The deprecated `minibatch_size` as a number of minibatches (checked, and warned about)."""
        if self.minibatch_size % self.seq_len or steps % self.minibatch_size:
            raise ConfigError(
                f"data.minibatch_size ({self.minibatch_size}) must be a multiple of data.seq_len "
                f"({self.seq_len}) and divide num_envs * rollout_steps ({steps}); better, drop it and set "
                "data.num_minibatches (4 by default), which holds whatever num_envs is"
            )
        num_minibatches = steps // self.minibatch_size
        warnings.warn(
            f"data.minibatch_size is deprecated (it has to change with num_envs): use data.num_minibatches "
            f"{num_minibatches}, the same split here",
            FutureWarning,
            stacklevel=4,
        )
        return num_minibatches

    def make_env(
        self,
        num_envs: int,
        device: torch.device | str,
        seed: int,
        vectorization: str | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ) -> VectorTask:
        """Build the configured task with `num_envs` envs (`env_kwargs`: other task arguments than the config's)."""
        mode = vectorization or self.vectorization
        kwargs = self.env_kwargs if env_kwargs is None else env_kwargs
        env = make_task(self.env_name, num_envs, device, seed, self.difficulty, mode, self.wrappers, **kwargs)
        return with_previous_action(env, self.previous_action)

    def _probe_spec(self, env_kwargs: dict[str, Any]) -> EnvSpec:
        """The env spec for these task arguments, from a one-env probe (closed again).

        A gym probe runs in this process whatever `vectorization` says (no worker to start for it).
        """
        gym_env = self.env_name.startswith(GYM_PREFIX)
        mode = "sync" if gym_env else self.vectorization
        probe = self.make_env(1, "cpu", self.seed, mode, env_kwargs)
        _close(probe)
        self._restorable = getattr(probe, "restorable", True)
        return env_spec_of(probe)

    # --- Lightning hooks ------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    @property
    def world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    @property
    def device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def setup(self, stage: str) -> None:
        _silence_inapplicable_lightning_warnings()
        seed = self.seed + 1000 * self.rank
        if self.collector is None or self.collector.device != self.device:
            if self.collector is not None:
                _close(self.collector.env)
            env = self.make_env(self.num_envs, self.device, seed)
            self.collector = RolloutCollector(
                env, self.rollout_steps, self.seq_len, self.burn_in, self.gamma, self.gae_lambda, seed, self.cuda_graphs
            )
        if self.eval_env is None or self.eval_env.device != self.device:
            _close(self.eval_env)
            self.eval_env = self.make_env(self.eval_envs, self.device, seed + 500)
        if self._pending_state is not None:
            self._apply_state(self._pending_state)
            self._pending_state = None

    def teardown(self, stage: str) -> None:
        """Close envs that hold outside resources (a gym env's worker processes); built-in tasks stay."""
        if self.collector is not None and not getattr(self.collector.env, "restorable", True):
            _close(self.collector.env)
            self.collector = None
        if self.eval_env is not None and not getattr(self.eval_env, "restorable", True):
            _close(self.eval_env)
            self.eval_env = None

    def update_task(self, **env_kwargs: Any) -> None:
        """Change task arguments (for example `horizon`) from the next rollout on.

        Used by curricula. Episodes in flight restart; the observation and action sizes must stay
        the same (the agent's layers depend on them). The new arguments are saved in checkpoints.
        """
        new_kwargs = {**self.env_kwargs, **env_kwargs}
        spec = self._probe_spec(new_kwargs)
        if spec != self.env_spec:
            raise ConfigError(
                f"update_task({env_kwargs}) would change the env spec from {self.env_spec} to {spec}; "
                "the agent's input/output layers cannot follow. Keep item counts fixed and change the horizon"
            )
        self.env_kwargs = new_kwargs
        if self.collector is not None:
            seed = self.seed + 1000 * self.rank
            _close(self.collector.env)
            self.collector.replace_env(self.make_env(self.num_envs, self.device, seed))
            _close(self.eval_env)
            self.eval_env = self.make_env(self.eval_envs, self.device, seed + 500)

    def _policy(self) -> RecurrentPolicy:
        return self.trainer.lightning_module

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_IterationDataset(self), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_EvaluationDataset(self), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(_EvaluationDataset(self), batch_size=None)

    # --- the work -------------------------------------------------------------------------------
    @property
    def minibatches_per_epoch(self) -> int:
        return self.num_minibatches

    @property
    def env_steps(self) -> int:
        """Env steps collected so far on this rank."""
        return self.collector.env_steps if self.collector is not None else 0

    def iterate(self, policy: RecurrentPolicy) -> Iterator[SequenceBatch]:
        """Collect one rollout and yield its minibatches for every update epoch."""
        assert self.collector is not None, "setup() must run first"
        started = time.perf_counter()
        rollout = self.collector.collect(policy, seed=self.seed + 1000 * self.rank)
        if self.collector.device.type == "cuda":  # replayed graphs run ahead of the host: time the device's work
            torch.cuda.synchronize(self.collector.device)
        self.collect_seconds += time.perf_counter() - started
        self.iteration += 1
        data = sequences(rollout, self.seq_len, self.burn_in)
        num_sequences = data["actions"].shape[0]
        per_minibatch = self.minibatch_size // self.seq_len
        generator = self.collector.generator
        for _ in range(self.update_epochs):
            order = torch.randperm(num_sequences, device=generator.device, generator=generator)
            for start in range(0, num_sequences, per_minibatch):
                idx = order[start : start + per_minibatch]
                yield SequenceBatch(
                    obs=data["obs"][idx],
                    starts=data["starts"][idx],
                    states=index_state(data["states"], idx),
                    actions=data["actions"][idx],
                    log_probs=data["log_probs"][idx],
                    values=data["values"][idx],
                    advantages=data["advantages"][idx],
                    returns=data["returns"][idx],
                    burn_in=self.burn_in,
                    rollout_stats=rollout.stats,
                )

    def evaluate(self, policy: RecurrentPolicy, num_episodes: int | None = None) -> dict[str, torch.Tensor]:
        """Greedy evaluation episodes on the evaluation envs (same seed each time: comparable)."""
        assert self.eval_env is not None, "setup() must run first"
        if self._evaluator is None or self._evaluator.env is not self.eval_env:
            self._evaluator = Evaluator(self.eval_env, self.cuda_graphs)
        return self._evaluator(policy, num_episodes or self.eval_episodes, seed=self.seed + 500 + 1000 * self.rank)

    @property
    def acting(self) -> dict[str, str]:
        """How collection and evaluation stepped last: `cuda graph`, or `eager (why)`; absent before they ran."""
        ran = {}
        if self.collector is not None:
            ran["collect"] = self.collector.acting
        if self._evaluator is not None:
            ran["evaluate"] = self._evaluator.acting
        return ran

    @contextmanager
    def evaluating(self, **env_kwargs: Any) -> Iterator[None]:
        """Within the block, `evaluate` runs on the task with these arguments instead (a curriculum's target,
        while training is at an easier stage); the training envs, `env_kwargs` and checkpoints are untouched."""
        assert self.eval_env is not None, "setup() must run first"
        saved = self.eval_env
        seed = self.seed + 1000 * self.rank + 500
        self.eval_env = self.make_env(self.eval_envs, self.device, seed, env_kwargs={**self.env_kwargs, **env_kwargs})
        try:
            yield
        finally:
            _close(self.eval_env)
            self.eval_env = saved

    # --- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What continues collection exactly: counters, and the collector of every DDP rank.

        `collector` is this rank's; under DDP (where only rank 0 writes the checkpoint) `collectors` holds
        every rank's, gathered here (Lightning builds a checkpoint on every rank), so each rank resumes its
        own envs and sampling instead of all of them continuing rank 0's.
        """
        collector = self.collector.state_dict() if self.collector is not None else None
        state = {
            "env_kwargs": dict(self.env_kwargs),
            "iteration": self.iteration,
            "collect_seconds": self.collect_seconds,
            "collector": collector,
        }
        if _distributed():
            state["collectors"] = _gather(move_data_to_device(collector, "cpu"))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.collector is None:  # restored before setup: apply once the envs exist
            self._pending_state = state
        else:
            self._apply_state(state)

    def _apply_state(self, state: dict[str, Any]) -> None:
        saved_kwargs = state.get("env_kwargs", self.env_kwargs)
        if saved_kwargs != self.env_kwargs:
            if self._fitting():  # resume where training was (a curriculum's stage)
                self.update_task(**saved_kwargs)
            else:  # validate / test evaluate the task the config names
                rank_zero_info(
                    f"The checkpoint was training on {self.env_name} with {saved_kwargs} (a curriculum stage?); "
                    f"evaluating the configured task {self.env_kwargs or '(its difficulty defaults)'}"
                )
        self.iteration = state["iteration"]
        self.collect_seconds = state["collect_seconds"]
        if state["collector"] is not None and self._fitting():  # evaluation needs no collector (any num_envs)
            problems = self.resume_problems(state)
            if problems:
                raise ConfigError(f"the checkpoint's rollout state does not fit this run: {'; '.join(problems)}")
            self.collector.load_state_dict(self._rank_collector_state(state))

    def _rank_collector_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """This rank's collector state; a rank the checkpoint has none for (more ranks than it was saved
        with) keeps its own seeded generator and starts new episodes, counting rank 0's env steps."""
        saved = state.get("collectors") or [state["collector"]]
        if self.rank < len(saved):
            return saved[self.rank]
        warnings.warn(
            f"the checkpoint holds the rollout state of {len(saved)} rank(s); rank {self.rank} starts new episodes",
            stacklevel=2,
        )
        return {"started": False, "generator": self.collector.generator.get_state(), "env_steps": saved[0]["env_steps"]}

    def resume_problems(self, state: dict[str, Any]) -> list[str]:
        """Why training cannot continue from `state` (a checkpoint's `state_dict()` of this class); `[]` if it can.

        Envs, recurrent states and burn-in history are restored tensor for tensor, so `num_envs`, the
        observation size and `burn_in` must be the checkpoint's (not for envs that restart their episodes).
        """
        collector = state.get("collector") or {}
        if not collector.get("started") or not self._restorable:
            return []
        saved_envs, saved_size = collector["next_obs"].shape
        saved_burn_in = collector["history_obs"].shape[0]
        pairs = [
            ("data.num_envs", self.num_envs, saved_envs),
            ("observation size", self.env_spec.observation_size, saved_size),
            ("data.burn_in", self.burn_in, saved_burn_in),
        ]
        return [f"{name} is {here} here, {saved} in the checkpoint" for name, here, saved in pairs if here != saved]

    def _fitting(self) -> bool:
        trainer = getattr(self, "trainer", None)
        return trainer is None or trainer.state.fn in (None, TrainerFn.FITTING)


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _gather(obj: Any) -> list[Any]:
    """`obj` of every rank, in rank order (a collective: every rank must call it)."""
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def _close(env: Any) -> None:
    close = getattr(env, "close", None)
    if close is not None:
        close()


class _IterationDataset(IterableDataset):
    """Each `iter()` (one per Lightning epoch) is one PPO iteration: collect, then minibatches."""

    def __init__(self, datamodule: RolloutDataModule):
        self.datamodule = datamodule

    def __iter__(self) -> Iterator[SequenceBatch]:
        return self.datamodule.iterate(self.datamodule._policy())

    def __len__(self) -> int:
        return self.datamodule.minibatches_per_epoch * self.datamodule.update_epochs


class _EvaluationDataset(IterableDataset):
    """One item: the metrics of a greedy evaluation with the current policy."""

    def __init__(self, datamodule: RolloutDataModule):
        self.datamodule = datamodule

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        yield self.datamodule.evaluate(self.datamodule._policy())

    def __len__(self) -> int:
        return 1
