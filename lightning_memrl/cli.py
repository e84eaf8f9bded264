"""`memrl`: LightningCLI for fit / validate / test, plus the `bench` subcommand.

memrl fit --config configs/quickstart.yaml [--config callbacks/kl_stop.yaml] [--data.num_envs 512]
memrl test --config configs/quickstart.yaml --ckpt_path runs/.../last.ckpt
memrl bench [throughput options]
memrl tune --config configs/x.yaml --search configs/search/x.yaml --n-trials 20   (needs the [tune] extra)
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_memrl.agents.recurrent_ppo import RecurrentPPO
from lightning_memrl.callbacks.results import ResultsJson
from lightning_memrl.data.datamodule import RolloutDataModule
from lightning_memrl.errors import ConfigError, MissingDependencyError, TrainingDivergedError

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `memrl` command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("bench", "suite", "tune"):
        return _run_tool(args)
    try:
        cli = MemRLCLI(args=None if argv is None else args)
    except (ConfigError, MissingDependencyError, TrainingDivergedError) as err:
        print(f"memrl: error: {err}", file=sys.stderr)
        return 2
    trainer = cli.trainer
    results = next((cb for cb in trainer.callbacks if isinstance(cb, ResultsJson)), None)
    if trainer.is_global_zero and results is not None and results.log_dir is not None:
        print(f"memrl: logs, checkpoints and results.json in {results.log_dir}")
    return 0


def _run_tool(args: list[str]) -> int:
    """`memrl bench NAME ...` runs `lightning_memrl.benchmarks.NAME.main`; `memrl suite ...` the suite,
    `memrl tune ...` the hyperparameter search (`lightning_memrl.benchmarks.tune`)."""
    import importlib

    if args[0] in ("suite", "tune"):
        name, rest = args[0], args[1:]
    elif len(args) > 1 and not args[1].startswith("-"):
        name, rest = args[1], args[2:]
    else:
        name, rest = "throughput", args[1:]
    try:
        module = importlib.import_module(f"lightning_memrl.benchmarks.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"lightning_memrl.benchmarks.{name}":
            raise
        print(f"memrl: error: no benchmark named {name!r}", file=sys.stderr)
        return 2
    try:
        return int(module.main(rest) or 0)
    except (ConfigError, MissingDependencyError) as err:
        print(f"memrl: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
