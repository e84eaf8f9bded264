"""hippotorch's README blocks run exactly as written (tests/seeds/hippotorch_readme.md holds them verbatim): a module
named `hippotorch` that re-exports our names is all a seed user needs; the README's `agent` is anything with an
`update(batch)`, and the Hub is the offline fake of conftest.py."""

import importlib
import re
import sys
import types
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
BLOCKS = re.findall(r"```python\n(.*?)```", (HERE / "hippotorch_readme.md").read_text(), re.DOTALL)
SEED = HERE.parents[1].parent / "shared" / "seeds" / "002_8449dc48fad80070.txt"  # ../shared/seeds beside the repo
WHERE = {  # hippotorch's name -> our module
    **dict.fromkeys(
        ["Episode", "DualEncoder", "MemoryStore", "Consolidator", "HippocampalReplayBuffer"],
        "lightning_memrl.hippocampal",
    ),
    **dict.fromkeys(["push_memory_to_hub", "load_memory_from_hub"], "lightning_memrl.hippocampal.hub"),
    **dict.fromkeys(["SB3ReplayBufferWrapper", "TerminalSegmenter"], "lightning_memrl.integrations.sb3"),
}


class _Agent:
    def __init__(self):
        self.batches = []

    def update(self, batch):
        self.batches.append(batch)


@pytest.fixture
def hippotorch(monkeypatch):
    """`import hippotorch` gives our names (the SB3 ones imported when asked for: they need stable-baselines3)."""
    module = types.ModuleType("hippotorch")

    def __getattr__(name):
        if name not in WHERE:
            raise AttributeError(name)
        return getattr(importlib.import_module(WHERE[name]), name)

    module.__getattr__ = __getattr__
    monkeypatch.setitem(sys.modules, "hippotorch", module)
    return module


def _run(block: str, namespace: dict) -> dict:
    exec(compile(block, "hippotorch README", "exec"), namespace)
    return namespace


def test_the_blocks_are_the_seed_readmes():
    assert len(BLOCKS) == 3 and "buffer.consolidate(steps=50, batch_size=64, report_quality=True)" in BLOCKS[0]
    if SEED.is_file():  # the seeds sit beside the project's checkout on its development machine
        assert re.findall(r"```python\n(.*?)```", SEED.read_text(), re.DOTALL) == BLOCKS


def test_quickstart_and_hub_blocks_run_as_written(hippotorch, offline_hub, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the hub's repo ids are not local directories here
    torch.manual_seed(0)
    ns = _run(BLOCKS[0], {"agent": _Agent()})
    batch, metrics = ns["batch"], ns["metrics"]
    assert ns["agent"].batches == [batch] and batch["states"].shape == (64, 4)
    assert int(batch["semantic"].sum()) == round(64 * 0.3) and ns["consolidator"].steps == 50
    assert {"loss", "quality_before/same_return", "quality_after/same_return"} <= set(metrics)
    ns = _run(BLOCKS[2], {})
    assert (offline_hub / "user/fetch-reach-expert" / "weights.pt").is_file()
    assert ns["restored"].embed_dim == 128 and ns["buffer"].store is ns["restored_memory"]


def test_sb3_block_runs_as_written_after_the_quickstart(hippotorch):
    pytest.importorskip("stable_baselines3")
    ns = _run(BLOCKS[0], {"agent": _Agent()})
    ns = _run(BLOCKS[1], ns)
    sb3_buffer = ns["sb3_buffer"]
    obs = torch.zeros(4).numpy()
    for t in range(4):
        sb3_buffer.add(obs, obs, torch.zeros(1).numpy(), 1.0, t == 3)  # the README's commented call
    assert len(ns["buffer"].store.episodes) == 2  # the quickstart's episode and the one just ended
