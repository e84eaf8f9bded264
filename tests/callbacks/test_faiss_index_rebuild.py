"""FaissIndexRebuild: schedule / drift decisions, rebuild inside a Trainer, state in the checkpoint."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_memrl.callbacks.faiss_index_rebuild import FaissIndexRebuild
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory.episodic import EpisodicMemory


class _WithMemory(L.LightningModule):
    def __init__(self, memory):
        super().__init__()
        self.memory, self.layer = memory, torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=4)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_decisions():
    cb = FaissIndexRebuild(every_n_iterations=3, imbalance_threshold=2.0)
    assert not cb.should_rebuild(2, 1.5)[0]
    assert cb.should_rebuild(3, 1.0) == (True, "3 iterations since the last rebuild")
    assert cb.should_rebuild(1, 2.5)[0] and "imbalance" in cb.should_rebuild(1, 2.5)[1]
    with pytest.raises(ConfigError, match="every_n_iterations or imbalance_threshold"):
        FaissIndexRebuild(every_n_iterations=None)
    with pytest.raises(ConfigError, match="> 1"):
        FaissIndexRebuild(imbalance_threshold=0.5)


def test_rebuilds_on_schedule_and_keeps_every_vector(tmp_path):
    faiss = pytest.importorskip("faiss")
    faiss.omp_set_num_threads(1)
    memory = EpisodicMemory(16, 4, backend="ivfpq", nlist=4, m=4, nbits=4, nprobe=4, train_threshold=200)
    memory.store.add(torch.randn(300, 16), torch.randn(300, 16))
    keys = memory.store.keys.clone()
    cb = FaissIndexRebuild(every_n_iterations=2, recall_sample=64, k=5)
    trainer = L.Trainer(
        max_epochs=4,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[cb],
        default_root_dir=tmp_path,
    )
    trainer.fit(_WithMemory(memory))
    assert cb.rebuilds == 2 and cb.last_rebuild == 4 and memory.store.rebuilds == 3
    assert memory.store.index.ntotal == 300 and torch.equal(memory.store.keys, keys)
    assert trainer.callback_metrics["episodic/recall@5"] >= 0.8
    assert "episodic/rebuild_seconds" in trainer.callback_metrics
    restored = FaissIndexRebuild(every_n_iterations=2)
    restored.load_state_dict(cb.state_dict())
    assert restored.state_dict() == {"last_rebuild": 4, "rebuilds": 2, "seen": 3}


class _RebuildAt(L.Callback):
    """Someone else (MemoryConsolidation after re-encoding) rebuilds the index at the end of one iteration."""

    def __init__(self, memory, iteration):
        self.memory, self.iteration = memory, iteration

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 == self.iteration:
            self.memory.store.rebuild(seed=7)


def test_a_rebuild_by_another_callback_restarts_the_count(tmp_path):
    faiss = pytest.importorskip("faiss")
    faiss.omp_set_num_threads(1)
    memory = EpisodicMemory(16, 4, backend="ivfpq", nlist=4, m=4, nbits=4, nprobe=4, train_threshold=200)
    memory.store.add(torch.randn(300, 16), torch.randn(300, 16))
    cb = FaissIndexRebuild(every_n_iterations=2, recall_sample=0)
    trainer = L.Trainer(
        max_epochs=4, logger=False, enable_progress_bar=False, enable_checkpointing=False,
        enable_model_summary=False, callbacks=[_RebuildAt(memory, 2), cb], default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(_WithMemory(memory))
    # without the other rebuild at iteration 2, this callback would rebuild at 2 and 4
    assert cb.rebuilds == 1 and cb.last_rebuild == 4 and memory.store.rebuilds == 3
