"""Our default gym agent against sb3-contrib's RecurrentPPO (its defaults), at equal env steps.

    memrl bench versus_sb3 --env gym:MiniGrid-MemoryS7-v0 \
        --wrappers '[{"class_path": "minigrid.wrappers.ImgObsWrapper"}]' --steps 204800 --seeds 0 1 2

Each run trains one agent for `--steps` env steps on one CPU thread (wall and CPU seconds of the
training are both recorded: on a shared machine the CPU time is the fairer speed), then evaluates it
greedily over `--eval-episodes` episodes (ours: the final evaluation of `memrl fit` in `results.json`;
theirs: `evaluate_policy`, deterministic, on the same wrapped env). Prints one line per run and a
table; appends JSON lines to `--out`. Needs the `[envs]` extra (sb3-contrib) and the env's package.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import torch

from lightning_memrl.errors import MissingDependencyError
from lightning_memrl.tools.main import GYM_DEFAULT

DEFAULT_CONFIG = GYM_DEFAULT


def run_ours(env: str, wrappers: list, steps: int, seed: int, config: Path, episodes: int, root: Path) -> dict:
    import yaml

    from lightning_memrl.callbacks.results import ResultsJson
    from lightning_memrl.cli import MemRLCLI

    per_iteration = _per_iteration(config)
    iterations = max(1, round(steps / per_iteration))
    args = ["fit", "--config", str(config), "--data.env", env, "--data.seed", str(seed)]
    args += ["--data.wrappers", yaml.safe_dump(wrappers, default_flow_style=True).strip()]
    args += ["--trainer.max_epochs", str(iterations), "--trainer.check_val_every_n_epoch", str(iterations + 1)]
    args += ["--trainer.default_root_dir", str(root / f"ours_seed{seed}"), "--trainer.enable_progress_bar", "false"]
    args += ["--checkpoint.save_last", "false", "--checkpoint.save_top_k", "0"]
    args += ["--data.eval_episodes", str(episodes)]
    cpu = time.process_time()
    cli = MemRLCLI(args=args)
    cpu = time.process_time() - cpu  # training, plus the final evaluation (a little against us)
    results = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ResultsJson))
    record = json.loads(results.path.read_text())  # the final greedy evaluation of `memrl fit`
    return {
        "agent": "ours",
        "env_steps": int(record["env_steps"]),
        "wall_s": float(record["wall_s"]),  # training only, as for sb3's `learn`
        "cpu_s": cpu,
        "return": float(record["return_mean"]),
        "success_rate": record["success_rate"],
        "episodes": int(record["episodes"]),
    }


def _per_iteration(config: Path) -> int:
    import yaml

    data = yaml.safe_load(Path(config).read_text())["data"]
    return int(data["num_envs"]) * int(data["rollout_steps"])


def run_sb3(env: str, wrappers: list, steps: int, seed: int, episodes: int) -> dict:
    try:
        from sb3_contrib import RecurrentPPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.evaluation import evaluate_policy
    except ImportError as err:
        raise MissingDependencyError("versus_sb3 needs sb3-contrib: pip install -e '.[envs]'") from err

    make = _env_factory(env, wrappers)
    venv = make_vec_env(make, n_envs=1, seed=seed)
    policy_kwargs = {"features_extractor_class": _int_flatten_extractor()}
    model = RecurrentPPO("MlpLstmPolicy", venv, seed=seed, verbose=0, device="cpu", policy_kwargs=policy_kwargs)
    started, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    eval_env = make_vec_env(make, n_envs=1, seed=seed + 500)
    returns, _ = evaluate_policy(
        model, eval_env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True
    )
    return {
        "agent": "sb3-contrib RecurrentPPO",
        "env_steps": int(model.num_timesteps),
        "wall_s": wall,
        "cpu_s": cpu,
        "return": float(statistics.fmean(returns)),
        "episodes": len(returns),
    }


def _int_flatten_extractor() -> type:
    """sb3's default features extractor (`FlattenExtractor`) with its size as a Python int.

    For a `MultiDiscrete` observation (popgym's CountRecall) sb3 computes the flattened size as a numpy
    integer, which `torch.nn.LSTM` refuses ("input_size should be of type int, got: int64"); the
    network is otherwise sb3's default, unchanged.
    """
    from stable_baselines3.common.torch_layers import FlattenExtractor

    class IntFlattenExtractor(FlattenExtractor):
        def __init__(self, observation_space: Any):
            super().__init__(observation_space)
            self._features_dim = int(self._features_dim)

    return IntFlattenExtractor


def _env_factory(env: str, wrappers: list):
    import gymnasium as gym

    from lightning_memrl.envs.wrappers import resolve_wrappers

    env_id = env.removeprefix("gym:")
    wrap = resolve_wrappers(wrappers)

    def make() -> Any:
        e = gym.make(env_id)
        for w in wrap:
            e = w(e)
        return e

    return make


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="memrl bench versus_sb3", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    parser.add_argument("--env", help="gym:<id> (gym:module:<id> imports module first)")
    parser.add_argument("--table", type=Path, default=None, help="only print the table of these JSON lines")
    parser.add_argument("--wrappers", default="[]", help="data.wrappers as JSON (class_path / init_args)")
    parser.add_argument("--steps", type=int, default=204_800)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--agents", nargs="+", choices=("ours", "sb3"), default=["ours", "sb3"])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--root", type=Path, default=Path("runs/versus_sb3"))
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    if args.table is not None:
        print(table([json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]))
        return 0
    if args.env is None:
        parser.error("--env is required (or --table FILE)")
    torch.set_num_threads(1)
    wrappers = json.loads(args.wrappers)
    records = []
    for seed in args.seeds:
        for agent in args.agents:
            if agent == "ours":
                rec = run_ours(args.env, wrappers, args.steps, seed, args.config, args.eval_episodes, args.root)
            else:
                rec = run_sb3(args.env, wrappers, args.steps, seed, args.eval_episodes)
            rec.update(
                env=args.env, wrappers=wrappers, seed=seed, sps=rec["env_steps"] / rec["wall_s"],
                machine=f"{platform.machine()} {platform.processor() or ''} 1 thread".strip(),
                date=date.today().isoformat(), torch=torch.__version__,
            )  # fmt: skip
            records.append(rec)
            print(
                f"{rec['agent']:<26} seed {seed}: return {rec['return']:.3f} over {rec['episodes']} episodes, "
                f"{rec['env_steps']} env steps in {rec['wall_s']:.0f} s ({rec['sps']:.0f} env-steps/s)",
                flush=True,
            )
            if args.out is not None:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
    print(table(records))
    return 0


def table(records: list[dict]) -> str:
    """A Markdown table per env and agent: return over seeds (mean, min-max), env steps, time and speed.

    Speed is env steps per wall second, and per CPU second where recorded (fairer on a shared machine).
    """
    rows = [
        "| env | agent | seeds | env steps | eval return: mean (min to max) | wall s | env-steps/s wall | "
        "env-steps/s CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["env"], r["agent"]), []).append(r)
    for (env, agent), rs in groups.items():
        ret = [r["return"] for r in rs]
        cpu = [r["env_steps"] / r["cpu_s"] for r in rs if r.get("cpu_s")]
        rows.append(
            f"| {env} | {agent} | {len(rs)} | {rs[0]['env_steps']:,} | {statistics.fmean(ret):.3f} "
            f"({min(ret):.3f} to {max(ret):.3f}) | {statistics.fmean(r['wall_s'] for r in rs):.0f} | "
            f"{statistics.fmean(r['sps'] for r in rs):,.0f} | {f'{statistics.fmean(cpu):,.0f}' if cpu else 'n/a'} |"
        )
    return "\n".join(rows)
