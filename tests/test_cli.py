"""`memrl` end to end: fit writes results.json, test reloads a checkpoint, bad input gets clear errors."""

import json
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from lightning_memrl.cli import MemRLCLI
from lightning_memrl.tools.main import main

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--config", str(ROOT / "configs" / "quickstart.yaml"),
    "--data.num_envs", "16",
    "--data.rollout_steps", "64",
    "--data.seq_len", "64",
    "--data.num_minibatches", "2",
    "--data.eval_envs", "16",
    "--data.eval_episodes", "16",
    "--model.controller.init_args.hidden_size", "16",
    "--trainer.max_epochs", "2",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip


def _log_dir(capsys) -> Path:
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("memrl: logs"))
    return Path(line.rsplit(" in ", 1)[1])


def test_fit_then_test_from_checkpoint(tmp_path, capsys):
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path)]) == 0
    log_dir = _log_dir(capsys)
    results = json.loads((log_dir / "results.json").read_text())
    assert results["stage"] == "fit" and results["device"] == "cpu"
    assert 0.0 <= results["success_rate"] <= 1.0
    assert results["env_steps"] == 2 * 16 * 64
    assert results["wall_s"] > 0 and results["sps"] > 0
    assert Path(results["config"]).exists()
    assert list(log_dir.glob("events.out.tfevents.*")), "TensorBoard is the default logger"
    ckpt = log_dir / "checkpoints" / "last.ckpt"
    assert ckpt.exists()

    # `--ckpt_path last` tests the trained run (Lightning alone tested untrained weights, with a warning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["test", *TINY, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", "last"]) == 0
    test_dir = _log_dir(capsys)
    test_results = json.loads((test_dir / "results.json").read_text())
    assert test_results["stage"] == "test" and test_results["checkpoint"] == str(ckpt)
    assert 0.0 <= test_results["success_rate"] <= 1.0 and test_results["device"] == "cpu"
    assert not {"sps", "wall_s", "env_steps"} & set(test_results), "a test trains nothing: no speed"
    messages = " ".join(str(w.message) for w in caught)
    for noise in ("Unable to serialize", "dirpath has changed", "no last checkpoint available"):
        assert noise not in messages, noise


def test_callback_stacks_compose(tmp_path, capsys):
    args = ["fit", *TINY, "--config", str(ROOT / "configs" / "callbacks" / "kl_stop.yaml")]
    assert main([*args, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1"]) == 0
    config = (_log_dir(capsys) / "config.yaml").read_text()
    assert "lightning_memrl.callbacks.KLEarlyStopping" in config


def test_a_built_in_task_config_takes_a_gym_env_alone(tmp_path, capsys, lightning_info):
    """The quickstart (difficulty: easy) with `--data.env gym:CartPole-v1` trains, the difficulty ignored with one
    note; it used to fail until `--data.difficulty null` was added too."""
    args = ["fit", *TINY, "--data.env", "gym:CartPole-v1", "--trainer.max_epochs", "1"]
    assert main([*args, "--trainer.default_root_dir", str(tmp_path)]) == 0
    results = json.loads((_log_dir(capsys) / "results.json").read_text())
    assert results["success_rate"] is None and results["return_mean"] > 0  # CartPole: scored by return
    notes = [m for m in lightning_info if "data.difficulty 'easy'" in m]
    assert len(notes) == 1 and "ignored for 'gym:CartPole-v1'" in notes[0]


def test_unknown_task_is_a_clear_error(tmp_path, capsys):
    code = main(["fit", *TINY, "--data.env", "delayed_queue", "--trainer.default_root_dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown task 'delayed_queue'" in err and "delayed_cue" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--data.burn_in", "64"], "burn_in"),
        (["--data.num_minibatches", "3"], "num_minibatches (3) must divide the 16 training sequences"),
        (["--data.seq_len", "48"], "seq_len"),
    ],
)
def test_bad_shapes_are_clear_errors(tmp_path, capsys, override, message):
    assert main(["fit", *TINY, *override, "--trainer.default_root_dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("num_envs", [8, 16, 512])
def test_the_quickstart_keeps_its_four_minibatches_whatever_num_envs(num_envs):
    """`num_minibatches` is the knob: a minibatch_size of 2048 broke at 8 envs and meant 32 minibatches at 512."""
    quickstart = ["--config", str(ROOT / "configs" / "quickstart.yaml"), "--trainer.logger", "false"]
    cli = MemRLCLI(args=[*quickstart, "--data.num_envs", str(num_envs)], run=False)
    dm = cli.datamodule
    assert dm.minibatches_per_epoch == 4 and dm.minibatch_size == num_envs * 128 // 4


def test_unknown_config_key_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *TINY, "--data.num_worlds", "8"])
    assert exit_info.value.code != 0
    assert "num_worlds" in capsys.readouterr().err


def test_an_abbreviated_key_is_rejected_naming_it(capsys):
    """argparse's prefix matching took `--data.num_env 16` as `--data.num_envs 16`; a key must be spelled out."""
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *TINY, "--data.num_env", "16", "--print_config"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --data.num_env 16" in capsys.readouterr().err


@pytest.mark.parametrize("spelling", [["--seed_everything", "3"], ["--seed_everything=3"]])
def test_seed_everything_seeds_as_data_seed_does(tmp_path, capsys, spelling):
    """The LightningCLI habit `--seed_everything 3` failed with "invalid Union value"; it is `--data.seed 3`."""
    runs = {}
    for name, seed in (("data_seed", ["--data.seed", "3"]), ("seed_everything", spelling)):
        args = ["fit", *TINY, *seed, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / name)]
        assert main(args) == 0
        log_dir = _log_dir(capsys)
        results = json.loads((log_dir / "results.json").read_text())
        config = yaml.safe_load((log_dir / "config.yaml").read_text())
        runs[name] = (results["return_mean"], config["data"]["seed"], config["seed_everything"])
    assert runs["seed_everything"] == runs["data_seed"]
    assert runs["data_seed"][1:] == (3, 3)


def test_seed_everything_in_a_config_file_is_not_dropped(tmp_path):
    config = tmp_path / "seed.yaml"
    config.write_text("seed_everything: 5\n")
    cli = MemRLCLI(args=[*TINY, "--config", str(config), "--trainer.logger", "false"], run=False)
    assert cli.datamodule.seed == 5 and torch.initial_seed() == 5


def test_matmul_precision_holds_for_the_run_and_is_restored(tmp_path, monkeypatch, capsys):
    seen = []
    fit = L.Trainer.fit
    monkeypatch.setattr(
        L.Trainer, "fit", lambda *a, **k: seen.append(torch.get_float32_matmul_precision()) or fit(*a, **k)
    )
    args = ["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)]
    assert main([*args, "--matmul_precision", "high"]) == 0
    assert main(args) == 0  # left out: PyTorch's setting stands
    assert seen == ["high", "highest"] and torch.get_float32_matmul_precision() == "highest"
    with pytest.raises(SystemExit):
        main([*args, "--matmul_precision", "fast"])
    assert "matmul_precision" in capsys.readouterr().err


def test_two_different_seeds_are_a_clear_error(capsys):
    assert main(["fit", *TINY, "--seed_everything", "3", "--data.seed", "4"]) == 2
    assert "seed_everything (3) and data.seed (4) differ" in capsys.readouterr().err


def test_unknown_key_in_a_config_file_is_rejected(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  rollout_stepz: 8\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *TINY, "--config", str(bad)])
    assert exit_info.value.code != 0
    assert "rollout_stepz" in capsys.readouterr().err


def test_unknown_bench_is_a_clear_error(capsys):
    assert main(["bench", "no_such_bench"]) == 2
    assert "no benchmark named 'no_such_bench'" in capsys.readouterr().err


def test_any_lightning_logger_works(tmp_path, capsys):
    args = ["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)]
    logger = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(tmp_path)]
    assert main([*args, *logger]) == 0
    log_dir = _log_dir(capsys)
    assert (log_dir / "metrics.csv").exists()
    assert "train/policy_loss" in (log_dir / "metrics.csv").read_text().splitlines()[0]


def test_resuming_a_finished_run_still_writes_results(tmp_path, capsys):
    """Regression: a run resumed from a checkpoint at max_epochs skipped training and wrote nothing."""
    args = ["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)]
    assert main(args) == 0
    ckpt = _log_dir(capsys) / "checkpoints" / "last.ckpt"
    assert main([*args, "--ckpt_path", str(ckpt)]) == 0
    results = json.loads((_log_dir(capsys) / "results.json").read_text())
    assert results["env_steps"] == 16 * 64 and 0.0 <= results["success_rate"] <= 1.0


def test_ckpt_path_last_continues_the_newest_run(tmp_path, capsys):
    args = ["fit", *TINY, "--trainer.default_root_dir", str(tmp_path)]
    assert main([*args, "--trainer.max_epochs", "1"]) == 0
    first = _log_dir(capsys)
    assert main([*args, "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 0
    results = json.loads((_log_dir(capsys) / "results.json").read_text())
    assert results["env_steps"] == 2 * 16 * 64  # one iteration restored, one more trained
    assert (first / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_ckpt_path_last_evaluates_the_newest_checkpoint(tmp_path, capsys, stage):
    """`memrl test --ckpt_path last` (and validate) loads the newest last.ckpt, as fit does; Lightning alone
    finds no checkpoint in a fresh process."""
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path)]) == 0
    checkpoint = _log_dir(capsys) / "checkpoints" / "last.ckpt"
    cli = MemRLCLI(args=[stage, *TINY, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", "last"])
    assert Path(cli.trainer.ckpt_path) == checkpoint


def test_ckpt_path_last_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", "last"]) == 2
    assert "no last.ckpt under trainer.default_root_dir" in capsys.readouterr().err
