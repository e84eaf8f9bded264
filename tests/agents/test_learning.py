"""A broken learner fails CI: a tiny delayed_cue must be learned well above chance in well under a minute."""

import lightning as L

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule


def test_gru_learns_a_short_delayed_cue():
    L.seed_everything(0)
    dm = RolloutDataModule(
        env_kwargs={"horizon": 8, "num_cues": 4},
        num_envs=32,
        rollout_steps=32,
        seq_len=32,
        num_minibatches=4,
        update_epochs=4,
        eval_envs=64,
        eval_episodes=256,
        seed=0,
    )
    agent = RecurrentPPO(GRU(32, update_bias_init=3.0), env_spec=dm.env_spec, lr=3e-3)
    trainer = L.Trainer(
        max_epochs=60,
        gradient_clip_val=0.5,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(agent, dm)
    success = float(dm.evaluate(agent)["success_rate"])
    chance = 0.25
    assert success >= 0.6, f"greedy success {success:.2f} after {dm.env_steps} env steps (chance {chance})"
