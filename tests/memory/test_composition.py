"""Every controller composes with every memory: one PPO iteration with a plain Lightning Trainer."""

import inspect

import lightning as L
import pytest
import torch

import lightning_memrl.controllers as controllers
import lightning_memrl.memory as memories
from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.data import RolloutDataModule

SMALL = {"hidden_size": 16, "d_model": 16, "num_heads": 2, "num_layers": 1}  # size names controllers use


def _buildable_from_sizes(cls) -> bool:
    """Controllers built from sizes alone (not building blocks such as ResidualStack that take modules)."""
    required = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return all(name in SMALL for name in required)


CONTROLLERS = [n for n in controllers.__all__ if n != "Controller" and _buildable_from_sizes(getattr(controllers, n))]
MEMORIES = [
    n
    for n in memories.__all__
    if n not in ("Memory", "ParallelMemory")  # ParallelMemory is built from memories: tested below
    and issubclass(getattr(memories, n), memories.Memory)
]


def _small(cls, **fixed):
    params = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in SMALL.items() if k in params and k not in fixed}, **fixed)


@pytest.mark.parametrize("memory_name", MEMORIES)
@pytest.mark.parametrize("controller_name", CONTROLLERS)
def test_one_ppo_iteration(controller_name, memory_name, tmp_path):
    L.seed_everything(0, verbose=False)
    controller = _small(getattr(controllers, controller_name))
    memory_cls = getattr(memories, memory_name)
    size_args = {"capacity": 8} if "capacity" in inspect.signature(memory_cls).parameters else {}
    memory = memory_cls(query_size=controller.output_size, **size_args)
    data = RolloutDataModule(
        env="delayed_cue",
        env_kwargs={"horizon": 5, "num_cues": 2},
        num_envs=4,
        rollout_steps=8,
        seq_len=8,
        burn_in=2,
        num_minibatches=2,
        update_epochs=1,
        eval_envs=4,
        eval_episodes=4,
    )
    agent = RecurrentPPO(controller, env_spec=data.env_spec, memory=memory)
    before = [p.detach().clone() for p in memory.parameters()]
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(agent, data)

    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/policy_loss"])
    assert any(k.startswith("train/memory/") for k in metrics), sorted(metrics)
    assert any(not torch.equal(a, b) for a, b in zip(before, memory.parameters(), strict=True))  # memory trained


def test_parallel_miras_and_episodic_memory_on_the_hybrid_backbone(tmp_path):
    """The Infinity agent's parts: HybridMambaAttention with Dual-Tier Miras beside the episodic store."""
    L.seed_everything(0, verbose=False)
    controller = controllers.HybridMambaAttention(16, num_layers=2, d_state=8, head_dim=8, num_heads=2, context=8)
    episodic = memories.EpisodicMemory(16, read_size=8, k=2, capacity=64, backend="exact")
    memory = memories.ParallelMemory([memories.DualTierMiras(16, memory_dim=8, deep_hidden=8, chunk_size=4), episodic])
    data = RolloutDataModule(
        env="delayed_cue", env_kwargs={"horizon": 5, "num_cues": 2}, num_envs=4, rollout_steps=8, seq_len=8,
        burn_in=2, num_minibatches=2, update_epochs=1, eval_envs=4, eval_episodes=4,
    )  # fmt: skip
    agent = RecurrentPPO(controller, env_spec=data.env_spec, memory=memory, normalize_values=True)
    assert memory.read_size == 8 + 8
    trainer = L.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=1, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(agent, data)
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/policy_loss"]) and "val/return" in metrics
    assert "train/memory/0_DualTierMiras/gate_mean" in metrics
    assert float(metrics["train/memory/1_EpisodicMemory/hit_rate"]) > 0  # replay read acting-time entries
    assert episodic.store.size == 2 * 4 * 8  # every acting step of both iterations was written


def test_parallel_memory_state_dict_carries_the_episodic_store():
    def build():
        torch.manual_seed(0)
        episodic = memories.EpisodicMemory(8, read_size=4, k=2, capacity=32, backend="exact")
        return memories.ParallelMemory([memories.DualTierMiras(8, memory_dim=4, deep_hidden=4), episodic])

    memory = build()
    state = memory.initial_state(3)
    with torch.no_grad():  # acting: the episodic member writes
        for _ in range(5):
            _, state = memory.forward_step(torch.randn(3, 8), state, torch.zeros(3, dtype=torch.bool))
    restored = build()
    restored.load_state_dict(memory.state_dict())
    assert restored.memories[1].store.size == 15
    query = torch.randn(2, 8)
    fresh = restored.initial_state(2)
    restored.eval()
    memory.eval()
    torch.testing.assert_close(
        restored.forward_step(query, fresh, torch.zeros(2, dtype=torch.bool))[0],
        memory.forward_step(query, fresh, torch.zeros(2, dtype=torch.bool))[0],
    )


def test_parallel_memory_read_only_suspends_its_episodic_members_writes():
    episodic = memories.EpisodicMemory(8, read_size=4, k=2, capacity=32, backend="exact")
    memory = memories.ParallelMemory([memories.DualTierMiras(8, memory_dim=4, deep_hidden=4), episodic])
    state, no_reset = memory.initial_state(3), torch.zeros(3, dtype=torch.bool)
    with torch.no_grad():
        with memory.read_only():
            memory.forward_step(torch.randn(3, 8), state, no_reset)
        assert episodic.store.size == 0
        memory.forward_step(torch.randn(3, 8), state, no_reset)
    assert episodic.store.size == 3
