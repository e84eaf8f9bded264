"""ParallelMemory's learned fusion gate (Infinity's): a gate per memory from the query, trained through PPO."""

import lightning as L
import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import DualTierMiras, KVMemory, ParallelMemory


def _gated(query_size=16):
    memories = [DualTierMiras(query_size, memory_dim=6, deep_hidden=5, chunk_size=4), KVMemory(query_size, capacity=6)]
    return ParallelMemory(memories, fusion="gate")


def _datamodule():
    dm = RolloutDataModule(
        env="delayed_cue", env_kwargs={"horizon": 5, "num_cues": 2}, num_envs=4, rollout_steps=8, seq_len=8,
        num_minibatches=1, update_epochs=1, eval_envs=4, eval_episodes=4,
    )  # fmt: skip
    dm.setup("fit")
    return dm


def test_each_read_is_scaled_by_its_gate_from_the_query():
    memory = _gated(8)
    with torch.no_grad():
        memory.gate.weight.normal_()
    query = torch.randn(3, 8)
    read, _ = memory.forward_step(query, memory.initial_state(3), torch.zeros(3, dtype=torch.bool))
    plain = ParallelMemory(list(memory.memories))
    unscaled, _ = plain.forward_step(query, plain.initial_state(3), torch.zeros(3, dtype=torch.bool))
    gates = torch.sigmoid(memory.gate(query))
    sizes = [m.read_size for m in memory.memories]
    expected = torch.cat([g[:, None] * r for g, r in zip(gates.T, unscaled.split(sizes, -1), strict=True)], -1)
    torch.testing.assert_close(read, expected)
    assert "gate_0_mean" not in memory.diagnostics()  # an acting step keeps no host state (CUDA graphs)
    memory.forward_sequence(query[:, None], memory.initial_state(3), torch.zeros(3, 1, dtype=torch.bool))
    assert set(memory.diagnostics()) >= {"gate_0_mean", "gate_1_mean"}  # training's sequences report them


def test_the_gate_gets_the_ppo_gradient():
    dm = _datamodule()
    agent = RecurrentPPO(GRU(16), env_spec=dm.env_spec, memory=_gated())
    batch = next(iter(dm.iterate(agent)))
    agent.training_step(batch, 0)["loss"].backward()
    gate = agent.memory.gate
    assert gate.weight.grad.abs().sum() > 0 and gate.bias.grad.abs().sum() > 0


def test_a_fit_trains_the_gate_and_logs_its_mean(tmp_path):
    L.seed_everything(0, verbose=False)
    dm = _datamodule()
    agent = RecurrentPPO(GRU(16), env_spec=dm.env_spec, memory=_gated())
    before = agent.memory.gate.weight.detach().clone()
    trainer = L.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(agent, dm)
    assert not torch.equal(agent.memory.gate.weight, before)
    assert 0.0 < float(trainer.callback_metrics["train/memory/gate_0_mean"]) < 1.0


def test_an_unknown_fusion_is_a_config_error():
    with pytest.raises(ConfigError, match="concat"):
        ParallelMemory([KVMemory(8)], fusion="sum")
