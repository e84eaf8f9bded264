"""Greedy episodes of a trained agent on a task scored answer by answer: which answers it gets right.

    python examples/inspect_answers.py --ckpt_path runs/x/lightning_logs/version_0/checkpoints/last.ckpt \
        --set horizon=300 --set num_patterns=5

For the tasks that ask several answers an episode (copy_memory, permuted_copy, pattern_binding, n_back,
multi_cue_delay, associative_recall): success, how often the k-th answer of an episode is right, and how often
it is right when every answer before it was. `--set` changes a task argument of the run's task (a longer
horizon than training showed, more patterns), so a checkpoint can be asked how far its reads carry.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from lightning_memrl.envs.scored_answers import ScoredAnswersTask
from lightning_memrl.tools.export import find_config, load_agent


@torch.no_grad()
def inspect(agent, datamodule, num_episodes: int, seed: int, task_kwargs: dict) -> dict[str, torch.Tensor]:
    """`num_episodes` greedy episodes at once: `success [E]` and `right [E, num_answers]` (bool)."""
    env = datamodule.make_env(num_episodes, "cpu", seed, env_kwargs={**datamodule.env_kwargs, **task_kwargs})
    task = getattr(env, "task", env)  # under `data.previous_action` the wrapped task keeps the answers
    if not isinstance(task, ScoredAnswersTask):
        raise SystemExit(f"{type(task).__name__} is not scored answer by answer: nothing to inspect")
    obs, _ = env.reset()
    state, reset = agent.initial_state(num_episodes), torch.ones(num_episodes, dtype=torch.bool)
    right = []
    for _step in range(task.horizon):
        due = task._target()
        act = agent.act(obs, state, reset, greedy=True)
        if bool((due >= 0).all()):  # fixed-length tasks: every episode answers at the same steps
            right.append(act.action == due)
        obs, _reward, terminated, truncated, info = env.step(act.action)
        state, reset = act.state, terminated | truncated
    return {"success": info["success"], "right": torch.stack(right, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a task argument")
    parser.add_argument("--episodes", type=int, default=512)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    task_kwargs = dict(item.split("=", 1) for item in args.set)
    task_kwargs = {key: yaml.safe_load(value) for key, value in task_kwargs.items()}
    agent, datamodule = load_agent(args.ckpt_path, find_config(args.ckpt_path))
    agent.eval()
    out = inspect(agent, datamodule, args.episodes, args.seed, task_kwargs)
    right = out["right"].float()
    all_before = torch.cat([torch.ones_like(right[:, :1]), right.cumprod(1)[:, :-1]], 1)
    given = (right * all_before).sum(0) / all_before.sum(0).clamp_min(1)
    print(
        f"{datamodule.env_name} {task_kwargs or ''}: success {out['success'].float().mean():.3f} over {args.episodes}"
    )
    print("answer  right  right | all before right")
    for k in range(right.shape[1]):
        print(f"{k:6d}  {right[:, k].mean():.3f}  {given[k]:.3f}")


if __name__ == "__main__":
    main()
