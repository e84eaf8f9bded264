"""Checkpoint and resume: a run stopped after iteration k and resumed reproduces the uninterrupted run."""

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.callbacks import KLEarlyStopping
from lightning_memrl.controllers import LSTM
from lightning_memrl.data import RolloutDataModule


class _Record(L.Callback):
    """Records each iteration's metrics once every epoch-end hook has logged (at the next start)."""

    def __init__(self):
        self.epochs = []
        self._pending = False

    def on_train_epoch_start(self, trainer, pl_module):
        if self._pending:
            self._record(trainer, pl_module, trainer.current_epoch - 1)
        self._pending = True

    def on_train_end(self, trainer, pl_module):
        self._record(trainer, pl_module, trainer.current_epoch - 1)

    def _record(self, trainer, pl_module, epoch):
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if not k.startswith("time/sps")}
        params = torch.cat([p.detach().flatten() for p in pl_module.parameters()])
        self.epochs.append((epoch, metrics, params.clone()))


def _fit(epochs, root, ckpt_path=None):
    L.seed_everything(0)
    dm = RolloutDataModule(
        env_kwargs={"horizon": 7, "num_cues": 3},
        num_envs=8,
        rollout_steps=16,
        seq_len=8,
        burn_in=3,
        num_minibatches=4,
        update_epochs=2,
        seed=5,
    )
    model = RecurrentPPO(LSTM(16), env_spec=dm.env_spec, lr=3e-3, anneal_lr=True)
    record = _Record()
    trainer = L.Trainer(
        max_epochs=epochs,
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=0.5,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=2,
        callbacks=[
            record,
            KLEarlyStopping(target_kl=0.01, adaptive=True),
            ModelCheckpoint(dirpath=root, save_last=True, save_top_k=0),
        ],
    )
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    return record.epochs


def test_resumed_run_continues_exactly(tmp_path):
    full = _fit(5, tmp_path / "full")
    _fit(2, tmp_path / "part")
    resumed = _fit(5, tmp_path / "part", ckpt_path=str(tmp_path / "part" / "last.ckpt"))

    assert [e for e, _, _ in resumed] == [2, 3, 4]
    for (epoch, metrics, params), (epoch_r, metrics_r, params_r) in zip(full[2:], resumed, strict=True):
        assert epoch == epoch_r
        # the uninterrupted run still shows iteration 1's val/* at iteration 2; compare the rest
        not_val = lambda keys: {k for k in keys if not k.startswith("val/")}
        assert not_val(metrics) == not_val(metrics_r)
        if epoch == 3:  # validation ran at iteration 3 in both
            assert "val/success_rate" in metrics_r
        for key in metrics.keys() & metrics_r.keys():
            assert metrics[key] == metrics_r[key], f"{key} differs at iteration {epoch}"
        assert torch.equal(params, params_r)
