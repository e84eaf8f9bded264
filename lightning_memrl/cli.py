"""`MemRLCLI`: the LightningCLI behind `memrl fit / validate / test`.

It links the env spec from the data module to the agent, seeds everything from `data.seed`, and always
checkpoints and writes `results.json`. The `memrl` command itself (and its tools) is `lightning_memrl.tools.main`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_memrl.agents.recurrent_ppo import RecurrentPPO
from lightning_memrl.callbacks.results import ResultsJson
from lightning_memrl.data.datamodule import RolloutDataModule
from lightning_memrl.errors import ConfigError

TRAINER_DEFAULTS = {
    "max_epochs": 100,
    "num_sanity_val_steps": 0,
    "check_val_every_n_epoch": 10,
    "gradient_clip_val": 0.5,
    "log_every_n_steps": 16,
    "default_root_dir": "runs",
}


class MemRLCLI(LightningCLI):
    """LightningCLI with `RecurrentPPO` and `RolloutDataModule`, the env spec linked from data to
    model, `data.seed` seeding everything, and checkpointing plus `results.json` always on."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, **kwargs):
        # Tools (suite, benchmarks, tests) drive the CLI with explicit args inside another command.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        kwargs.setdefault("trainer_defaults", TRAINER_DEFAULTS)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("seed_everything_default", 0)
        super().__init__(RecurrentPPO, RolloutDataModule, args=args, run=run, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.env_spec", "model.env_spec", apply_on="instantiate")
        parser.link_arguments("data.seed", "seed_everything", apply_on="parse")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})
        parser.add_lightning_class_args(ResultsJson, "results")

    def before_fit(self) -> None:
        self._resolve_last_checkpoint()

    def _resolve_last_checkpoint(self) -> None:
        """`--ckpt_path last` continues the newest run under `trainer.default_root_dir`.

        Lightning alone looks only in the new run's (empty) checkpoint dir and silently starts over.
        """
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") != "last":
            return
        root = Path(self.trainer.default_root_dir)
        candidates = sorted(root.glob("**/last.ckpt"), key=lambda path: path.stat().st_mtime)
        if not candidates:
            raise ConfigError(
                f"--ckpt_path last: no last.ckpt under trainer.default_root_dir ({root}); "
                "pass the checkpoint's path, or the default_root_dir of the run to continue"
            )
        config["ckpt_path"] = str(candidates[-1])
