"""Train stable-baselines3 DQN on CartPole, sampling from a hippocampal replay buffer.

    pip install 'lightning-memrl[sb3]'
    python examples/sb3_hippocampal_dqn.py --steps 20000

A quarter of each minibatch is retrieved from stored episodes similar to the recent transitions;
the rest is SB3's uniform replay. Every 50 stored episodes the encoder consolidates ("sleeps").
"""

from __future__ import annotations

import argparse

from stable_baselines3 import DQN
from stable_baselines3.common.evaluation import evaluate_policy

from lightning_memrl.integrations.sb3 import SB3ReplayBufferWrapper


def main(steps: int = 20_000, seed: int = 0) -> float:
    model = DQN(
        "MlpPolicy",
        "CartPole-v1",
        learning_starts=1000,
        seed=seed,
        device="cpu",
        replay_buffer_class=SB3ReplayBufferWrapper,
        replay_buffer_kwargs={"mixture_ratio": 0.25, "consolidate_every": 50, "consolidation_steps": 20},
    )
    model.learn(total_timesteps=steps)
    mean_return, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=10)
    stored = len(model.replay_buffer.hippocampal.store)
    print(f"mean return over 10 episodes: {mean_return:.1f} ({stored} episodes stored)")
    return mean_return


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.steps, args.seed)
