"""Lightning's advice that does not apply to a rollout data module is silenced, exactly that; real warnings stay."""

import warnings

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.trainer.connectors import data_connector

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.cli import MemRLCLI
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from tests.test_cli import TINY


class _RealWarning(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        warnings.warn("a real warning from user code", stacklevel=2)


def test_dataloader_and_log_interval_advice_is_silenced_and_real_warnings_kept(monkeypatch, tmp_path):
    monkeypatch.setattr(data_connector, "suggested_max_num_workers", lambda devices: 8)  # as on a many-core host
    dm = RolloutDataModule(env_kwargs={"horizon": 5}, num_envs=8, rollout_steps=16, seq_len=8, num_minibatches=2)
    agent = RecurrentPPO(GRU(8), env_spec=dm.env_spec)
    trainer = L.Trainer(
        max_epochs=1, logger=CSVLogger(tmp_path), log_every_n_steps=50, callbacks=[_RealWarning()],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(agent, dm)
    messages = [str(w.message) for w in caught]
    for advice in (
        "does not have many workers",
        "`IterableDataset` has `__len__`",
        "smaller than the logging interval",
        "`isinstance(treespec, LeafSpec)` is deprecated",
    ):
        assert not [m for m in messages if advice in m], advice
    assert "a real warning from user code" in messages


def test_the_logging_service_tip_is_dropped_and_other_lightning_info_kept(lightning_info):
    MemRLCLI(args=[*TINY, "--trainer.logger", "true"], run=False)
    assert not [m for m in lightning_info if "seamless cloud logging" in m]
    assert [m for m in lightning_info if m.startswith("GPU available")]


def test_benchmarks_drop_the_logging_service_tip_too(lightning_info, tmp_path):
    from lightning_memrl.tools.main import main

    tiny = ["--num-envs", "4", "--hidden", "8", "--rollout-steps", "8", "--seq-len", "8", "--iterations", "1"]
    assert main(["bench", "throughput", *tiny, "--warmup", "0", "--json", str(tmp_path / "t.json")]) == 0
    assert [m for m in lightning_info if m.startswith("GPU available")]
    assert not [m for m in lightning_info if "seamless cloud logging" in m]
