"""Reuse lightning-memrl's pieces in your own Lightning code, without the `memrl` CLI.

python examples/plain_trainer.py --iterations 20
"""

from __future__ import annotations

import argparse

import lightning as L

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.callbacks import KLEarlyStopping
from lightning_memrl.controllers import GRU
from lightning_memrl.data import RolloutDataModule


def main(iterations: int = 20, root_dir: str = "runs/example", seed: int = 0) -> dict[str, float]:
    L.seed_everything(seed)
    data = RolloutDataModule(
        env="delayed_cue",
        env_kwargs={"horizon": 6, "num_cues": 4},
        num_envs=64,
        rollout_steps=32,
        seq_len=16,
        num_minibatches=4,
        update_epochs=4,
        seed=seed,
    )
    agent = RecurrentPPO(GRU(hidden_size=64, update_bias_init=1.0), env_spec=data.env_spec, lr=1e-3)
    trainer = L.Trainer(
        max_epochs=iterations,  # one epoch = one PPO iteration
        gradient_clip_val=0.5,
        callbacks=[KLEarlyStopping(target_kl=0.05)],
        default_root_dir=root_dir,
        check_val_every_n_epoch=iterations,
        num_sanity_val_steps=0,
    )
    trainer.fit(agent, data)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    print(f"greedy success rate after {iterations} iterations: {metrics['val/success_rate']:.2f}")
    return metrics


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--root-dir", default="runs/example")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.iterations, args.root_dir, args.seed)
