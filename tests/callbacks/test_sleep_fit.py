"""The shipped sleep configs through `memrl fit`: a RecurrentPPO agent with an episodic store, MemoryConsolidation
and FaissIndexRebuild in its callback stack. It sleeps on schedule, the key encoder and the stored keys move, the
index is rebuilt, and a run resumed from a checkpoint between two sleeps ends exactly where the uninterrupted one
does (metrics, parameters, store, encoder and its optimizer)."""

import math
from pathlib import Path

import pytest
import torch

from lightning_memrl.callbacks import FaissIndexRebuild, MemoryConsolidation
from lightning_memrl.cli import MemRLCLI
from lightning_memrl.errors import ConfigError

faiss = pytest.importorskip("faiss")

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = [
    "--config", str(CONFIGS / "experiments" / "episodic_delayed_cue.yaml"),
    "--config", str(CONFIGS / "models" / "memories" / "episodic_sleep.yaml"),
    "--config", str(CONFIGS / "callbacks" / "sleep.yaml"),
]  # fmt: skip
TINY = [
    "--data.num_envs", "4", "--data.rollout_steps", "16", "--data.seq_len", "8", "--data.num_minibatches", "2",
    "--data.update_epochs", "1", "--data.eval_envs", "4", "--data.eval_episodes", "4",
    "--data.env_kwargs", '{"horizon": 6, "num_cues": 2}',
    "--model.controller.init_args.hidden_size", "16",
    "--model.memory.init_args.query_size", "16", "--model.memory.init_args.read_size", "8",
    "--model.memory.init_args.key_size", "8", "--model.memory.init_args.m", "4", "--model.memory.init_args.nlist", "4",
    "--model.memory.init_args.nbits", "4", "--model.memory.init_args.nprobe", "4",
    "--model.memory.init_args.train_threshold", "64", "--model.memory.init_args.capacity", "4096",
    "--trainer.check_val_every_n_epoch", "1000", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip


def _args(root, epochs, *extra):
    return [
        "fit",
        *SHIPPED,
        *TINY,
        "--trainer.max_epochs",
        str(epochs),
        "--trainer.default_root_dir",
        str(root),
        *extra,
    ]


def _fit(root, epochs, *extra):
    faiss.omp_set_num_threads(1)  # one thread: the index trains alike in every run
    return MemRLCLI(args=_args(root, epochs, *extra))


def _callback(trainer, cls):
    return next(cb for cb in trainer.callbacks if isinstance(cb, cls))


def _same(a, b, where):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a.nan_to_num(-7.0), b.nan_to_num(-7.0)) if a.is_floating_point() else torch.equal(a, b), (
            where
        )
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The uninterrupted 20-iteration run (sleeps after 10 and 20), and one stopped after 15 and resumed to 20."""
    root = tmp_path_factory.mktemp("sleep")
    initial = MemRLCLI(args=_args(root / "initial", 20)[1:], run=False).model  # the same seed: the same init
    full = _fit(root / "full", 20)
    _fit(root / "part", 15)
    last = next((root / "part").rglob("last.ckpt"))
    resumed = _fit(root / "part", 20, "--ckpt_path", str(last))
    return initial, full, resumed


def test_sleeps_on_schedule_and_moves_the_key_encoder_and_the_keys(runs):
    initial, full, _ = runs
    sleep = _callback(full.trainer, MemoryConsolidation)
    assert sleep.sleeps == 2 and sleep.consolidators[0].steps == 2 * 100
    memory, before = full.model.memory, initial.memory
    for new, old in zip(memory.key_encoder.parameters(), before.key_encoder.parameters(), strict=True):
        assert not torch.equal(new, old)
    store = memory.store
    values = store.values[store.ordered_slots()]
    keys = store.keys[store.ordered_slots()]
    torch.testing.assert_close(keys, memory.encode_key(values))  # every key re-encoded by the moved target
    assert not torch.allclose(keys, before.encode_key(values), atol=1e-3)
    metrics = full.trainer.callback_metrics
    assert metrics["consolidation/sleeps"] == 2 and metrics["consolidation/steps"] == 100
    assert store.is_trained and store.rebuilds == 3  # trained once, rebuilt after each sleep's re-encoding
    # FaissIndexRebuild (every 10 iterations) saw each sleep's rebuild and did not rebuild the same keys again
    index_rebuild = _callback(full.trainer, FaissIndexRebuild)
    assert index_rebuild.rebuilds == 0 and index_rebuild.last_rebuild == 20 and index_rebuild.seen_store_rebuilds == 3
    assert "consolidation/index_recall@5" in metrics and "consolidation/quality_after/same_return" in metrics
    assert list(Path(full.trainer.log_dir).glob("projector_config.pbtxt"))  # keys for TensorBoard's projector


def test_resume_between_two_sleeps_is_exact(runs):
    _, full, resumed = runs
    clock = lambda key: key.startswith("time/") or "seconds" in key  # noqa: E731  (wall-clock figures differ)
    metrics = {k: float(v) for k, v in full.trainer.callback_metrics.items() if not clock(k)}
    metrics_r = {k: float(v) for k, v in resumed.trainer.callback_metrics.items() if not clock(k)}
    _same(metrics, metrics_r, "metrics")
    state, state_r = full.model.state_dict(), resumed.model.state_dict()
    _same(list(state), list(state_r), "parameter names")
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            _same(value, state_r[name], name)
    _same(full.model.memory.store.state_dict(), resumed.model.memory.store.state_dict(), "store")
    _same(full.model.memory.ledger.state_dict(), resumed.model.memory.ledger.state_dict(), "ledger")
    sleep, sleep_r = _callback(full.trainer, MemoryConsolidation), _callback(resumed.trainer, MemoryConsolidation)
    _same(sleep.state_dict(), sleep_r.state_dict(), "MemoryConsolidation")  # sleeps, generator, encoder optimizer
    assert sleep_r.consolidators[0].optimizer.state  # the key encoder's Adam moments came back


def test_nothing_to_consolidate_is_a_config_error_at_fit_start(tmp_path):
    plain = ["--model.memory.init_args.key_size", "null"]
    with pytest.raises(ConfigError, match="key_size"):
        _fit(tmp_path / "no_key", 1, *plain)
    no_memory = [
        "fit",
        "--config", str(CONFIGS / "experiments" / "episodic_delayed_cue.yaml"),
        "--config", str(CONFIGS / "callbacks" / "sleep.yaml"),
        *[arg for pair in zip(TINY[::2], TINY[1::2], strict=True) if "memory" not in pair[0] for arg in pair],
        "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "none"),
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="no EpisodicMemory"):
        MemRLCLI(args=no_memory)


@pytest.mark.gpu
def test_the_shipped_sleep_stack_on_the_gpu(tmp_path):
    """On CUDA: the store, the key encoder and its optimizer live on the GPU; it sleeps, re-encodes and rebuilds."""
    cli = _fit(tmp_path, 20, "--trainer.accelerator", "gpu")
    sleep = _callback(cli.trainer, MemoryConsolidation)
    memory = cli.model.memory
    assert sleep.sleeps == 2 and memory.store.device.type == "cuda" and memory.store.is_trained
    slots = memory.store.ordered_slots()
    keys, values = memory.store.keys[slots].cpu(), memory.store.values[slots].cpu()
    torch.testing.assert_close(keys, memory.to("cpu").encode_key(values))  # after fit the module is on the CPU
    assert cli.trainer.callback_metrics["consolidation/steps"] == 100
