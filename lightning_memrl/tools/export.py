"""`memrl export`: a trained agent as a stateless step module (torch.export or ONNX).

    memrl export --ckpt_path runs/x/lightning_logs/version_0/checkpoints/last.ckpt --format torch
    memrl export --ckpt_path ... --format onnx --output policy.onnx        (needs the [export] extra)

The agent is rebuilt from the run's `config.yaml` (found beside the checkpoint's folder, or given
with `--config`), its weights loaded from the checkpoint, and `PolicyStep` (see
`lightning_memrl.agents.step_module`) written with a JSON sidecar (`<output>.json`) that says what a
caller needs without this library: the env, its wrappers, the observation parts and the state size.
`examples/run_exported_policy.py` runs such a file on its gymnasium env.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from lightning_utilities.core.imports import RequirementCache

from lightning_memrl.agents.step_module import PolicyStep
from lightning_memrl.errors import ConfigError, MissingDependencyError

FORMATS = {"torch": ".pt2", "onnx": ".onnx"}
INPUTS, OUTPUTS = ["obs", "state", "reset"], ["action", "logits", "value", "next_state"]


def export_policy(agent: torch.nn.Module, output: Path, fmt: str = "torch", meta: dict[str, Any] | None = None) -> Path:
    """Write `PolicyStep(agent)` to `output` (`torch`: torch.export `.pt2`; `onnx`) plus `<output>.json`.

    The batch dimension is dynamic. Returns the path written.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {sorted(FORMATS)}, got {fmt!r}")
    step = PolicyStep(agent.cpu())
    n = 2
    example = (
        torch.zeros(n, agent.env_spec.observation_size),
        step.initial_state(n),
        torch.ones(n, dtype=torch.bool),
    )
    batch = torch.export.Dim("batch", min=1)
    dynamic = ({0: batch}, {0: batch}, {0: batch})
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if fmt == "torch":
            torch.export.save(torch.export.export(step, example, dynamic_shapes=dynamic), output)
        else:
            if not (RequirementCache("onnx") and RequirementCache("onnxscript")):
                raise MissingDependencyError("--format onnx needs the [export] extra: pip install -e '.[export]'")
            torch.onnx.export(
                step, example, output, dynamo=True, dynamic_shapes=dynamic, input_names=INPUTS, output_names=OUTPUTS
            )
    spec = agent.env_spec
    sidecar = {
        "format": fmt,
        "inputs": INPUTS,
        "outputs": OUTPUTS,
        "observation_size": spec.observation_size,
        "state_size": step.state_size,
        "action_kind": spec.action_kind,
        "action_sizes": list(spec.action_sizes),
        "observation_parts": [asdict(p) for p in spec.parts],
        **(meta or {}),
    }
    Path(f"{output}.json").write_text(json.dumps(sidecar, indent=2))
    return output


def find_config(ckpt_path: Path) -> Path:
    """The `config.yaml` that `memrl fit` saved for the run of this checkpoint (its folder or one above)."""
    for folder in list(ckpt_path.resolve().parents)[:3]:
        if (folder / "config.yaml").is_file():
            return folder / "config.yaml"
    raise ConfigError(f"no config.yaml beside {ckpt_path} or above it: pass the run's config with --config")


def load_agent(ckpt_path: Path, config: Path) -> tuple[torch.nn.Module, Any]:
    """The agent of `config` with the weights of `ckpt_path`, and the data module of the config."""
    import yaml

    from lightning_memrl.cli import MemRLCLI

    values = yaml.safe_load(config.read_text())
    for key in ("ckpt_path", "weights_only"):  # `fit`'s own arguments, saved with the run's config
        values.pop(key, None)
    values.setdefault("trainer", {})["logger"] = False
    cli = MemRLCLI(args=values, run=False)
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # our own run's checkpoint
    cli.model.load_state_dict(checkpoint["state_dict"])
    return cli.model, cli.datamodule


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memrl export", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--ckpt_path", type=Path, required=True)
    parser.add_argument("--format", choices=sorted(FORMATS), default="torch")
    parser.add_argument("--config", type=Path, default=None, help="the run's config (default: its config.yaml)")
    parser.add_argument("--output", type=Path, default=None, help="default: policy.pt2 / policy.onnx beside the ckpt")
    args = parser.parse_args(argv)
    if not args.ckpt_path.is_file():
        raise ConfigError(f"--ckpt_path {args.ckpt_path} is not a file")
    config = args.config or find_config(args.ckpt_path)
    agent, dm = load_agent(args.ckpt_path, config)
    output = args.output or args.ckpt_path.with_name("policy" + FORMATS[args.format])
    meta = {
        "env": dm.env_name,
        "env_kwargs": dm.env_kwargs,
        "wrappers": dm.wrappers,
        "previous_action": dm.previous_action,  # the last observation part: the action of the step before
    }
    export_policy(agent, output, args.format, meta)
    print(f"memrl: wrote {output} and {output}.json ({args.format}; (obs, state, reset) -> {', '.join(OUTPUTS)})")
    return 0
