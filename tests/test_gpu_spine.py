"""The spine on CUDA: tasks, collection, replay honesty and training on the GPU."""

import lightning as L
import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU, LSTM
from lightning_memrl.data import RolloutDataModule
from lightning_memrl.data.collector import RolloutCollector
from lightning_memrl.envs import make_task
from lightning_memrl.ops import gru_scan, gru_scan_reference

pytestmark = pytest.mark.gpu


def test_gru_scan_on_cuda_matches_reference():
    gen = torch.Generator(device="cuda").manual_seed(0)
    B, T, H = 64, 32, 32
    gi = torch.randn(B, T, 3 * H, device="cuda", generator=gen, requires_grad=True)
    h0 = torch.randn(B, H, device="cuda", generator=gen, requires_grad=True)
    keep = (torch.rand(B, T, device="cuda", generator=gen) > 0.1).float()
    w = (0.3 * torch.randn(3 * H, H, device="cuda", generator=gen)).requires_grad_()
    b = torch.randn(3 * H, device="cuda", generator=gen, requires_grad=True)
    outs = []
    for fn in (gru_scan, gru_scan_reference):
        y = fn(gi, h0, keep, w, b)
        outs.append((y, *torch.autograd.grad(y.square().sum(), (gi, h0, w, b))))
    for ours, ref in zip(*outs, strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-3)  # TF32 matmuls


def test_task_runs_on_cuda():
    env = make_task("delayed_cue", 128, device="cuda", horizon=5)
    obs, _ = env.reset(seed=0)
    assert obs.device.type == "cuda"
    successes = 0.0
    for _ in range(5):
        obs, reward, term, trunc, info = env.step(env.oracle_action())
        successes += float(info["success"].sum())
    assert successes == 128


@pytest.mark.parametrize("make", [lambda: GRU(32), lambda: LSTM(32)])
def test_replay_is_honest_on_cuda(make):
    dm = RolloutDataModule(
        env_kwargs={"horizon": 5}, num_envs=16, rollout_steps=32, seq_len=8, burn_in=3, num_minibatches=4
    )
    agent = RecurrentPPO(make(), env_spec=dm.env_spec).cuda()
    env = dm.make_env(16, "cuda", 0)
    dm.collector = RolloutCollector(env, 32, 8, 3, 0.99, 0.95, seed=0)
    for batch in dm.iterate(agent):
        log_prob, _, value = agent.evaluate_sequences(batch)
        torch.testing.assert_close(log_prob, batch.log_probs, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(value, batch.values, atol=1e-4, rtol=1e-4)


def test_fit_on_gpu_keeps_everything_on_the_device():
    L.seed_everything(0)
    dm = RolloutDataModule(env_kwargs={"horizon": 8}, num_envs=64, rollout_steps=32, seq_len=32, num_minibatches=4)
    agent = RecurrentPPO(GRU(32), env_spec=dm.env_spec)
    trainer = L.Trainer(
        accelerator="gpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, check_val_every_n_epoch=2, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(agent, dm)
    assert dm.collector.env.device.type == "cuda"
    assert torch.isfinite(trainer.callback_metrics["train/value_loss"])
    assert "val/success_rate" in trainer.callback_metrics


def test_memrl_fit_on_gpu_writes_results(tmp_path, capsys):
    """Regression: the final evaluation ran after Lightning had moved the model back to the CPU."""
    import json
    from pathlib import Path

    from lightning_memrl.tools.main import main

    config = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    args = ["fit", "--config", str(config), "--trainer.accelerator", "gpu", "--trainer.max_epochs", "1"]
    assert main([*args, "--data.num_envs", "32", "--trainer.default_root_dir", str(tmp_path)]) == 0
    results = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert 0.0 <= results["success_rate"] <= 1.0
