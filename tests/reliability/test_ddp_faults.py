"""DDP beyond the happy path (CPU, gloo): a rank that raises ends every rank, with its error, never a hang; a
two-node launch (two `torchrun --nnodes 2 --node_rank k` on this machine) trains, checkpoints and resumes,
each rank continuing its own rollouts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import yaml

from tests.reliability.helpers import TINY

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


class RolloutDigest(L.Callback):
    """Write each rank's first minibatch of every iteration (actions and observations summed) to
    `<dir>/rank<r>_iteration<i>.json`: ranks collecting their own rollouts write different numbers."""

    def __init__(self, dir: str):
        super().__init__()
        self.dir = dir

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            digest = {"actions": float(batch.actions.float().sum()), "obs": float(batch.obs.sum())}
            path = Path(self.dir) / f"rank{trainer.global_rank}_iteration{trainer.current_epoch}.json"
            path.write_text(json.dumps(digest))


def _config(path: Path, callbacks: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({**TINY, "trainer": {**TINY["trainer"], "callbacks": callbacks}}))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(marker: str) -> list[int]:
    """Processes whose command line mentions `marker` (this test's own dirs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_a_rank_that_raises_ends_every_rank_with_its_error_not_a_hang(tmp_path):
    fault = {"class_path": "tests.reliability.faults.Fault"}
    fault["init_args"] = {"at": "update", "iteration": 1, "action": "raise", "rank": 1}
    config = _config(tmp_path / "config.yaml", [fault])
    command = [sys.executable, "-m", "lightning_memrl", "fit", "--config", str(config)]
    command += ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.default_root_dir", str(tmp_path)]
    proc = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)  # a hang fails here
    assert proc.returncode != 0
    assert "InjectedFault: injected fault at update, iteration 1" in proc.stderr
    assert not _alive(str(tmp_path)), "a rank outlived the failed run"


@pytest.mark.slow
def test_a_two_node_launch_trains_checkpoints_and_resumes_each_rank_on_its_own_rollouts(tmp_path):
    digests = tmp_path / "digests"
    digests.mkdir()
    callback = {"class_path": f"{__name__}.RolloutDigest", "init_args": {"dir": str(digests)}}
    config = _config(tmp_path / "config.yaml", [callback])
    fit = ["-m", "lightning_memrl", "fit", "--config", str(config), "--trainer.strategy", "ddp"]
    fit += ["--trainer.num_nodes", "2", "--trainer.devices", "1", "--trainer.default_root_dir", str(tmp_path / "run")]

    def launch(*extra: str) -> None:
        port, nodes = _free_port(), []
        for rank in (0, 1):
            torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(rank)]
            torchrun += ["--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port)]
            nodes.append(
                subprocess.Popen(
                    [*torchrun, *fit, *extra], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
            )
        outputs = [node.communicate(timeout=300)[0] for node in nodes]
        assert [node.returncode for node in nodes] == [0, 0], "\n".join(out[-3000:] for out in outputs)

    launch("--trainer.max_epochs", "2")
    assert json.loads((tmp_path / "run" / "results.json").read_text())["env_steps"] == 2 * 2 * 4 * 8
    launch("--trainer.max_epochs", "3", "--ckpt_path", "last")
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["env_steps"] == 2 * 3 * 4 * 8  # two ranks, three iterations, 4 envs x 8 steps
    for iteration in range(3):  # the resumed iteration 2 too: each rank on its own envs
        ranks = [json.loads((digests / f"rank{r}_iteration{iteration}.json").read_text()) for r in (0, 1)]
        assert ranks[0] != ranks[1], f"both ranks collected the same rollout at iteration {iteration}"
