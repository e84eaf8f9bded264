"""Every shipped experiment config (and every documented composition of them) parses as `memrl fit` reads it.

A renamed argument or a stale key in a YAML under `configs/` fails here, not in the middle of a long run.
`--print_config` validates every key and class path against the signatures without building anything.
"""

import contextlib
import io
from pathlib import Path

import pytest

from lightning_memrl.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

STANDALONE = [
    "quickstart.yaml",
    "delayed_cue_h200.yaml",
    "cartpole_gru.yaml",
    "cartpole_masked_gru.yaml",
    "infinity_cartpole.yaml",
    "curriculum/delayed_cue_h200.yaml",
    "speed/delayed_cue_gru_gpu.yaml",
    *sorted(str(p.relative_to(CONFIGS)) for p in (CONFIGS / "episodic").glob("*.yaml")),
    *sorted(str(p.relative_to(CONFIGS)) for p in (CONFIGS / "memory").glob("delayed_cue_*.yaml")),
]
MEMORY_TASKS = ["associative_recall_medium.yaml", "copy_memory_medium.yaml", "delayed_cue_h200.yaml"]
MEMORY_MODELS = sorted(p.name for p in (CONFIGS / "memory" / "models").glob("*.yaml"))
CONTROLLER_TASKS = sorted(p.name for p in (CONFIGS / "controllers").glob("*.yaml"))
CONTROLLER_MODELS = sorted(p.name for p in (CONFIGS / "controllers" / "models").glob("*.yaml"))

COMPOSED = [
    *[[f"memory/{task}", f"memory/models/{model}"] for task in MEMORY_TASKS for model in MEMORY_MODELS],
    ["memory/associative_recall_medium.yaml", "memory/models/kv.yaml", "memory/scale_gpu.yaml"],
    ["memory/delayed_cue_h200.yaml", "memory/models/kv.yaml", "memory/curriculum.yaml"],
    ["memory/associative_recall_medium.yaml", "memory/models/kv_lag.yaml", "memory/associative_recall_curriculum.yaml"],
    ["curriculum/delayed_cue_h200.yaml", "memory/models/ring.yaml"],
    *[[f"controllers/{task}", f"controllers/models/{m}"] for task in CONTROLLER_TASKS for m in CONTROLLER_MODELS],
]


def _print_config(files: list[str]) -> str:
    args = ["fit"]
    for name in files:
        args += ["--config", str(CONFIGS / name)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code == 0, f"memrl fit rejected {files}"
    return out.getvalue()


@pytest.mark.parametrize("name", STANDALONE)
def test_config_parses(name):
    assert "class_path" in _print_config([name])


@pytest.mark.parametrize("files", COMPOSED, ids=lambda files: "+".join(Path(f).stem for f in files))
def test_composed_configs_parse(files):
    printed = _print_config(files)
    model = (CONFIGS / files[1]).read_text()  # the model file's class is what the composition ends up with
    class_path = next(line.split(":", 1)[1].strip() for line in model.splitlines() if "class_path" in line)
    assert class_path in printed


def test_a_stale_key_is_caught(tmp_path):
    """The check has teeth: a config with an argument the class does not take is rejected."""
    stale = tmp_path / "stale.yaml"
    stale.write_text("model:\n  controller:\n    init_args:\n      update_gate_bias: 3.0\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "quickstart.yaml"), "--config", str(stale), "--print_config"])
    assert exit_info.value.code != 0
