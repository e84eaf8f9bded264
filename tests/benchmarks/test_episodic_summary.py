"""configs/episodic/summarise.py: the markdown table of the episodic learning benchmark."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "configs" / "episodic" / "summarise.py"


def _load():
    spec = importlib.util.spec_from_file_location("episodic_summarise", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(root: Path, arm: str, seed: int, success: float, steps: int) -> None:
    run = root / arm / f"seed{seed}" / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    record = {"success_rate": success, "return_mean": success, "env_steps": steps, "wall_s": 100.0 + seed}
    (run / "results.json").write_text(json.dumps(record))


def test_table_lists_every_run_and_the_mean_per_arm(tmp_path):
    summarise = _load()
    for seed, success in enumerate([0.5, 0.7]):
        _write(tmp_path, "baseline", seed, success, 8192)
    _write(tmp_path, "episodic", 0, 0.25, 16384)
    (tmp_path / "episodic" / "seed1").mkdir()  # a run that crashed: no results.json
    lines = summarise.table(summarise.collect(tmp_path)).splitlines()
    assert lines[2] == "| baseline | 0 | 0.500 | 0.500 | 8,192 | 100 |"
    assert lines[5].startswith("| episodic | 1 | no results.json")
    assert lines[6] == "| **baseline** | mean of 2 | 0.600 +- 0.141 | 0.600 +- 0.141 | 8,192-8,192 | 100-101 |"
    assert lines[7] == "| **episodic** | mean of 1 | 0.250 +- 0.000 | 0.250 +- 0.000 | 16,384-16,384 | 100-100 |"


def test_the_episode_scoped_arm_gets_its_rows_after_the_other_two(tmp_path):
    summarise = _load()
    for arm, success in [("episodic_scoped", 0.75), ("baseline", 0.25), ("episodic", 0.5)]:
        _write(tmp_path, arm, 0, success, 8192)
    lines = summarise.table(summarise.collect(tmp_path)).splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| baseline", "| episodic", "| episodic_scoped", "| **baseline**", "| **episodic**", "| **episodic_scoped**"
    ]  # fmt: skip
    assert lines[4] == "| episodic_scoped | 0 | 0.750 | 0.750 | 8,192 | 100 |"
