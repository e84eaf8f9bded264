"""MemoryConsolidation: sleeps on schedule, logs the loss and embeddings, resumes with the same buffer."""

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_memrl.callbacks.memory_consolidation import MemoryConsolidation
from lightning_memrl.errors import ConfigError
from lightning_memrl.hippocampal import Consolidator, DualEncoder, Episode, HippocampalReplayBuffer, MemoryStore


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=4)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _buffer():
    enc = DualEncoder(4, embed_dim=8, hidden_dim=8)
    buffer = HippocampalReplayBuffer(MemoryStore(8, 16), enc, consolidator=Consolidator(enc, lr=1e-3))
    for i in range(6):
        buffer.add_episode(
            Episode(torch.randn(8, 2), torch.zeros(8, 1), torch.full((8,), float(i)), torch.zeros(8, dtype=torch.bool))
        )
    return buffer


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="every_n_iterations >= 1"):
        MemoryConsolidation(every_n_iterations=0)
    assert MemoryConsolidation(every_n_iterations=3).should_sleep(6)[0]
    assert not MemoryConsolidation(every_n_iterations=3).should_sleep(4)[0]


def test_sleeps_on_schedule_logs_and_resumes(tmp_path):
    buffer = _buffer()
    cb = MemoryConsolidation(buffer, every_n_iterations=2, steps=3, batch_size=8)
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = L.Trainer(
        max_epochs=4,
        logger=logger,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[cb],
        log_every_n_steps=1,
    )
    trainer.fit(_Tiny())
    assert cb.sleeps == 2 and buffer.consolidator.steps == 6
    assert torch.isfinite(trainer.callback_metrics["consolidation/loss"])
    assert list(tmp_path.rglob("projector_config.pbtxt"))  # embeddings written for TensorBoard

    resumed = MemoryConsolidation(_buffer(), every_n_iterations=2, steps=3, batch_size=8)
    resumed.load_state_dict(cb.state_dict())
    assert resumed.sleeps == 2 and resumed.buffer.consolidator.steps == 6
    for a, b in zip(resumed.buffer.encoder.parameters(), buffer.encoder.parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(resumed.buffer.store.keys, buffer.store.keys)
