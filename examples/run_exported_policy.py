"""Run a policy written by `memrl export` on its gymnasium env, without lightning_memrl.

    memrl export --ckpt_path runs/x/lightning_logs/version_0/checkpoints/last.ckpt --format torch
    python examples/run_exported_policy.py --policy runs/x/lightning_logs/version_0/checkpoints/policy.pt2

Needs torch and gymnasium only (and the env's package); `--format onnx` files run with onnxruntime.
The sidecar `<policy>.json` names the env, its wrappers and how observations are flattened: this
script flattens Box (row-major) and Discrete (one-hot) parts, enough for most envs. A policy trained
with `data.previous_action: true` also reads the action of the step before (zeros at an episode's start).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch


def make_env(meta: dict) -> gym.Env:
    env_id = meta["env"].removeprefix("gym:")
    if ":" in env_id:  # `module:EnvName`: import the module that registers the env
        module, env_id = env_id.split(":", 1)
        importlib.import_module(module)
    wrappers = []
    for w in meta.get("wrappers") or []:  # import first: their package may register the env
        module, _, name = w["class_path"].rpartition(".")
        wrappers.append((getattr(importlib.import_module(module), name), w.get("init_args") or {}))
    env = gym.make(env_id, **(meta.get("env_kwargs") or {}))
    for cls, init_args in wrappers:
        env = cls(env, **init_args)
    return env


def flatten(obs, parts: list[dict]) -> np.ndarray:
    """One observation -> `[1, observation_size]` float32, part by part as the adapter does."""
    columns = []
    for part in parts:
        value = obs[part["name"]] if part["name"] else obs
        if part["kind"] == "discrete":
            columns.append(one_hot(value, part["sizes"]))
        else:
            columns.append(np.asarray(value, dtype=np.float32).reshape(-1))
    return np.concatenate(columns)[None]


def one_hot(values, sizes: list[int]) -> np.ndarray:
    """One one-hot per component, concatenated: component i is `values[i]` of `sizes[i]`."""
    columns, offset = np.zeros(sum(sizes), dtype=np.float32), 0
    for v, n in zip(np.asarray(values).reshape(-1), sizes, strict=True):
        columns[offset + int(v)] = 1.0
        offset += n
    return columns


def encode_action(action, meta: dict) -> np.ndarray:
    """The previous-action columns of a policy trained with `data.previous_action: true`."""
    if meta["action_kind"] in ("discrete", "multi_discrete"):
        return one_hot(action, meta["action_sizes"])
    return np.asarray(action, dtype=np.float32).reshape(-1)


class TorchPolicy:
    def __init__(self, path: str):
        self.step = torch.export.load(path).module()

    def __call__(self, obs, state, reset):
        with torch.no_grad():
            out = self.step(torch.from_numpy(obs), torch.from_numpy(state), torch.from_numpy(reset))
        return [o.numpy() for o in out]


class OnnxPolicy:
    def __init__(self, path: str):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(path)

    def __call__(self, obs, state, reset):
        return self.session.run(None, {"obs": obs, "state": state, "reset": reset})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="a .pt2 or .onnx file written by memrl export")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    meta = json.loads(Path(f"{args.policy}.json").read_text())
    policy = OnnxPolicy(args.policy) if meta["format"] == "onnx" else TorchPolicy(args.policy)
    env = make_env(meta)
    parts = meta["observation_parts"]
    reads_previous = bool(meta.get("previous_action"))  # then its last part is filled in here, not by the env
    if reads_previous:
        parts = parts[:-1]
    previous_size = meta["observation_parts"][-1]["shape"][0] if reads_previous else 0
    returns = []
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=args.seed + episode)
        state = np.zeros((1, meta["state_size"]), dtype=np.float32)
        reset, done, total = np.ones(1, dtype=bool), False, 0.0
        previous = np.zeros(previous_size, dtype=np.float32)  # no action before an episode's first step
        while not done:
            flat = np.concatenate([flatten(obs, parts), previous[None]], axis=1)
            action, _logits, _value, state = policy(flat, state, reset)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            if reads_previous:
                previous = encode_action(action[0], meta)
            total, done, reset = total + float(reward), terminated or truncated, np.zeros(1, dtype=bool)
        returns.append(total)
    print(f"mean return over {args.episodes} episodes: {np.mean(returns):.3f}")


if __name__ == "__main__":
    main()
