"""`MemRLCLI`: the LightningCLI behind `memrl fit / validate / test`.

It links the env spec from the data module to the agent, seeds everything from `data.seed`, sets PyTorch's
float32 matmul precision where `--matmul_precision` asks (for the run, restored after it), and always
checkpoints (atomically: `AtomicCheckpointIO`) and writes `results.json`. `--ckpt_path` is checked before
anything is built: `last` is the newest run under `trainer.default_root_dir`, and a file that is not a
usable checkpoint is a `ConfigError` naming it. The `memrl` command itself (and its tools) is
`lightning_memrl.tools.main`.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from jsonargparse.typing import register_type
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from lightning_memrl.agents.recurrent_ppo import RecurrentPPO
from lightning_memrl.callbacks.results import ResultsJson
from lightning_memrl.data.datamodule import RolloutDataModule
from lightning_memrl.errors import ConfigError
from lightning_memrl.plugins.checkpoint_io import (
    check_fits,
    read_checkpoint,
    state_dict_problems,
    use_atomic_checkpoints,
)
from lightning_memrl.specs import EnvSpec

# The env spec reaches `model.env_spec` by a link, and back from a checkpoint's hyperparameters (`memrl test
# --ckpt_path ...`): as a dict in dumped configs, not jsonargparse's "Unable to serialize instance" warning.
register_type(EnvSpec, serializer=dataclasses.asdict, deserializer=lambda value: EnvSpec(**value))


class _NoLoggingServiceTip(logging.Filter):
    """Drops Lightning's advertisement for a logging service printed at every Trainer start (nothing else)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip: For seamless cloud logging")


_TIP_FILTER = _NoLoggingServiceTip()


def hide_logging_service_tip() -> None:
    """Drop Lightning's logging-service advertisement from every Trainer started in this process."""
    rank_zero_logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _TIP_FILTER not in rank_zero_logger.filters:
        rank_zero_logger.addFilter(_TIP_FILTER)


TRAINER_DEFAULTS = {
    "max_epochs": 100,
    "num_sanity_val_steps": 0,
    "check_val_every_n_epoch": 10,
    "gradient_clip_val": 0.5,
    "log_every_n_steps": 16,
    "default_root_dir": "runs",
}


@contextmanager
def float32_matmul_precision(precision: str | None) -> Iterator[None]:
    """`torch.set_float32_matmul_precision(precision)` inside the context, the previous setting after it.

    None or the setting in effect changes nothing: setting even the default `highest` pins oneDNN's CPU matmuls
    to IEEE float32 (`torch.backends.mkldnn.matmul.fp32_precision`), which measured about 10% slower end to end."""
    previous = torch.get_float32_matmul_precision()
    if precision is None or precision == previous:
        yield
        return
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


#: `ckpt_path` values that Lightning resolves itself (`last` is resolved here, across runs)
LIGHTNING_CKPT_NAMES = ("best", "hpc")


class MemRLCLI(LightningCLI):
    """LightningCLI with `RecurrentPPO` and `RolloutDataModule`, the env spec linked from data to
    model, `data.seed` seeding everything (`seed_everything`, the LightningCLI key, is the same setting), whole option
    names only (no prefix matching), and checkpointing plus `results.json` always on."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, **kwargs):
        # Tools (suite, benchmarks, tests) drive the CLI with explicit args inside another command.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        hide_logging_service_tip()
        kwargs.setdefault("trainer_defaults", TRAINER_DEFAULTS)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("seed_everything_default", 0)
        self._checkpoint: tuple[str, dict] | None = None  # (path, its contents) of a checked --ckpt_path
        self._matmul_precision: AbstractContextManager = nullcontext()  # `--matmul_precision`, entered for the run
        super().__init__(RecurrentPPO, RolloutDataModule, args=args, run=run, **kwargs)

    def init_parser(self, **kwargs) -> LightningArgumentParser:
        # A key must be spelled out: argparse would take `--data.num_env 16` as `--data.num_envs 16`.
        kwargs.setdefault("allow_abbrev", False)
        return super().init_parser(**kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        _one_seed(self.config[subcommand] if subcommand else self.config)
        # Before LightningCLI reads the checkpoint's hyperparameters (a bare torch.load) and the Trainer its state.
        self._resolve_checkpoint()

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--matmul_precision",
            type=Literal["highest", "high", "medium"] | None,
            default=None,
            help="torch.set_float32_matmul_precision for the run: high lets float32 matmuls use TF32 on GPUs that have "
            "it (faster, about 10 bits of mantissa in the products); default: PyTorch's setting, left as it is",
        )
        parser.link_arguments("data.env_spec", "model.env_spec", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        # Every iteration (epoch) ends with a checkpoint: Lightning would otherwise save only after validations
        # when check_val_every_n_epoch > 1, and a run stopped between two would lose every iteration since.
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_on_train_epoch_end": True})
        parser.add_lightning_class_args(ResultsJson, "results")

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.config.get("subcommand")) or self.config
        precision = config.get("matmul_precision")
        if precision is not None and precision != torch.get_float32_matmul_precision():
            rank_zero_info(
                f"memrl: float32 matmuls at {precision!r} precision for this run (torch.set_float32_matmul_precision)"
            )
        self._matmul_precision = float32_matmul_precision(precision)
        self._matmul_precision.__enter__()

    def _restore_matmul_precision(self) -> None:
        self._matmul_precision.__exit__(None, None, None)
        self._matmul_precision = nullcontext()

    def before_fit(self) -> None:
        self._check_checkpoint_fits()

    def after_fit(self) -> None:
        self._restore_matmul_precision()

    def before_validate(self) -> None:
        self._check_checkpoint_fits()
        self._quiet_checkpoint_restore()

    def after_validate(self) -> None:
        self._quiet.__exit__(None, None, None)
        self._restore_matmul_precision()

    def before_test(self) -> None:
        self._check_checkpoint_fits()
        self._quiet_checkpoint_restore()

    def after_test(self) -> None:
        self._quiet.__exit__(None, None, None)
        self._restore_matmul_precision()

    def _quiet_checkpoint_restore(self) -> None:
        """validate and test write no checkpoint: silence (until `after_*`) the ModelCheckpoint's warning that
        its state restored from the trained run points at that run's directory."""
        self._quiet = warnings.catch_warnings()
        self._quiet.__enter__()
        warnings.filterwarnings("ignore", message="The dirpath has changed from")

    def instantiate_trainer(self, **kwargs) -> L.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        use_atomic_checkpoints(trainer)
        return trainer

    def _resolve_checkpoint(self) -> None:
        """`--ckpt_path last` continues (fit) or evaluates (validate, test) the newest run's `last.ckpt` under
        `trainer.default_root_dir`; the checkpoint file is checked.

        Lightning alone looks only in the new run's (empty) checkpoint dir: fit silently starts over, test
        silently evaluates untrained weights.
        """
        subcommand = self.config.get("subcommand")
        config = self.config.get(subcommand) if subcommand else None
        if config is None or not config.get("ckpt_path"):
            return
        if config["ckpt_path"] == "last":
            root = Path(config["trainer"]["default_root_dir"] or ".")
            candidates = sorted(root.glob("**/last.ckpt"), key=lambda path: path.stat().st_mtime)
            if not candidates:
                raise ConfigError(
                    f"--ckpt_path last: no last.ckpt under trainer.default_root_dir ({root}); "
                    "pass the checkpoint's path, or the default_root_dir of the run to continue"
                )
            config["ckpt_path"] = str(candidates[-1])
        path = str(config["ckpt_path"])
        if path not in LIGHTNING_CKPT_NAMES and not path.startswith("registry") and _is_local_file_protocol(path):
            self._checkpoint = (path, read_checkpoint(path, map_location="cpu", mmap=True))

    def _check_checkpoint_fits(self) -> None:
        """A checkpoint of another model or data config is a `ConfigError` naming it, before Lightning loads it."""
        if self._checkpoint is None:
            return
        path, checkpoint = self._checkpoint
        self._checkpoint = None  # the mapped file is not needed any more
        problems = state_dict_problems(checkpoint["state_dict"], self.model.state_dict())
        data_state = checkpoint.get(type(self.datamodule).__qualname__)
        if self.subcommand == "fit" and data_state is not None:
            problems += self.datamodule.resume_problems(data_state)
        check_fits(path, problems)


def _one_seed(config) -> None:
    """`seed_everything` (the LightningCLI key) and `data.seed` are one setting here: `data.seed` seeds the envs,
    action sampling and minibatch order, `seed_everything` torch and numpy. Where one is left at 0 (both
    defaults) the other sets both, with a note; two different non-zero seeds are an error."""
    chosen, data_seed = config["seed_everything"], config["data"]["seed"]
    if chosen is False:
        raise ConfigError("seed_everything false: this CLI always seeds (data.seed seeds the envs); give an integer")
    if chosen is True:
        chosen = random.randint(0, 2**31 - 1)
        rank_zero_info(f"memrl: seed_everything true drew the seed {chosen} (data.seed and seed_everything)")
    if chosen not in (0, data_seed) and data_seed != 0:
        raise ConfigError(
            f"seed_everything ({chosen}) and data.seed ({data_seed}) differ; they are one setting here: give one"
        )
    if chosen != data_seed and chosen != 0:
        rank_zero_info(f"memrl: seed_everything {chosen} sets data.seed {chosen} too (it seeds the envs)")
    seed = chosen or data_seed
    config["seed_everything"] = config["data"]["seed"] = seed
