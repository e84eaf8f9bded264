"""Lightning DDP on CPU (gloo): two processes, each collecting its own rollouts."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.data import datamodule as datamodule_module

ROOT = Path(__file__).resolve().parents[1]


def test_two_process_ddp_fit_counts_env_steps_of_all_ranks(tmp_path):
    args = [
        sys.executable, "-m", "lightning_memrl", "fit",
        "--config", str(ROOT / "configs" / "quickstart.yaml"),
        "--data.num_envs", "8", "--data.rollout_steps", "32", "--data.seq_len", "32",
        "--data.num_minibatches", "2", "--data.eval_envs", "8", "--data.eval_episodes", "8",
        "--model.controller.init_args.hidden_size", "16",
        "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu",
        "--trainer.strategy", "ddp", "--trainer.devices", "2",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert results["env_steps"] == 2 * 2 * 8 * 32  # ranks x iterations x envs x steps


def _rank_view(rank: int) -> RolloutDataModule:
    dm = RolloutDataModule(num_envs=8, rollout_steps=8, seq_len=8, num_minibatches=1, seed=7)
    dm.trainer = SimpleNamespace(
        global_rank=rank, world_size=2, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )
    dm.setup("fit")
    return dm


def test_each_rank_seeds_its_own_envs():
    rank0, rank1 = _rank_view(0), _rank_view(1)
    cues0 = rank0.collector.env.reset(seed=7 + 0)[0]
    cues1 = rank1.collector.env.reset(seed=7 + 1000)[0]
    assert not torch.equal(cues0, cues1)
    assert rank0.collector.generator.initial_seed() != rank1.collector.generator.initial_seed()


def _fitting_rank(rank: int, world_size: int = 2) -> RolloutDataModule:
    dm = RolloutDataModule(num_envs=8, rollout_steps=8, seq_len=8, num_minibatches=1, seed=7)
    dm.trainer = SimpleNamespace(
        global_rank=rank,
        world_size=world_size,
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
        state=SimpleNamespace(fn=TrainerFn.FITTING),
    )
    dm.setup("fit")
    return dm


def test_each_rank_resumes_its_own_rollouts_from_the_checkpoint_rank_0_writes(monkeypatch):
    """Regression: every rank loaded rank 0's collector, so after a resume all ranks collected rank 0's rollouts."""
    ranks = [_fitting_rank(0), _fitting_rank(1)]
    policy = RecurrentPPO(GRU(8), env_spec=ranks[0].env_spec)
    for dm in ranks:
        dm.collector.collect(policy)
    states = [copy.deepcopy(dm.collector.state_dict()) for dm in ranks]
    monkeypatch.setattr(datamodule_module, "_distributed", lambda: True)
    monkeypatch.setattr(datamodule_module, "_gather", lambda collector: states)
    checkpoint = copy.deepcopy(ranks[0].state_dict())  # what rank 0 writes for every rank
    continued = ranks[1].collector.collect(policy)  # rank 1 had it not been stopped

    resumed = _fitting_rank(1)
    resumed.load_state_dict(checkpoint)
    rollout = resumed.collector.collect(policy)
    assert torch.equal(rollout.obs, continued.obs) and torch.equal(rollout.actions, continued.actions)

    with pytest.warns(UserWarning, match="rollout state of 2 rank"):
        extra = _fitting_rank(2, world_size=3)
        extra.load_state_dict(copy.deepcopy(checkpoint))  # a rank the checkpoint never had: new episodes
    assert extra.collector.env_steps == states[0]["env_steps"] and not extra.collector._started
