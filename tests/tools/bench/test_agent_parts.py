"""The benchmarks' controller and memory from a name, a config file or a class path."""

import pytest

from lightning_memrl.controllers import LSTM, Transformer
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import KVMemory, ParallelMemory, SlotMemory
from lightning_memrl.tools.bench.agent_parts import agent_parts
from lightning_memrl.tools.bench.controllers import controller_factories

FACTORIES = controller_factories("torch", context=16)


def test_a_memory_by_name_fits_the_controller_whatever_the_config_says():
    ctl, mem, flags, name = agent_parts("gru", "kv_age", [], 16, FACTORIES)
    assert isinstance(mem, KVMemory) and mem.age_bias is not None
    assert flags == {"memory_sees_input": True} and mem.query_size == 32  # GRU output 16 + its input 16
    assert name == "gru + KVMemory (kv_age)"


def test_a_memory_by_file_or_class_path_and_a_controller_by_class_path():
    _, mem, _, _ = agent_parts("gru", "configs/models/memories/slot.yaml", [], 8, FACTORIES)
    assert isinstance(mem, SlotMemory) and mem.query_size == 8
    ctl, mem, flags, name = agent_parts(
        "lightning_memrl.controllers.LSTM", "lightning_memrl.memory.KVMemory", [], 8, FACTORIES
    )
    assert isinstance(ctl, LSTM) and ctl.output_size == 8 and isinstance(mem, KVMemory) and mem.query_size == 8
    assert flags == {} and name == "lightning_memrl.controllers.LSTM + KVMemory"


def test_configs_merge_and_give_the_controller_when_none_is_named(tmp_path):
    parallel = tmp_path / "parallel.yaml"
    parallel.write_text(
        "model:\n  memory:\n    class_path: lightning_memrl.memory.ParallelMemory\n    init_args:\n      memories:\n"
        "        - class_path: lightning_memrl.memory.SlotMemory\n"
        "        - class_path: lightning_memrl.memory.KVMemory\n          init_args: {query_size: 999}\n"
    )
    configs = ["configs/models/controllers/transformer.yaml", str(parallel)]
    ctl, mem, _, name = agent_parts(None, None, configs, 8, FACTORIES)
    assert isinstance(ctl, Transformer) and isinstance(mem, ParallelMemory)
    assert [m.query_size for m in mem.memories] == [128, 128]  # the Transformer's width, not 999
    assert name == "Transformer + ParallelMemory"


@pytest.mark.parametrize(
    "controller, memory, match",
    [
        ("nope", None, "unknown controller 'nope'; choose one of gru, "),
        ("gru", "nope", "no memory named 'nope'; choose one of episodic, "),
        ("gru", "lightning_memrl.memory.Nope", "cannot import class_path 'lightning_memrl.memory.Nope'"),
    ],
)
def test_bad_names_say_what_there_is(controller, memory, match):
    with pytest.raises(ConfigError, match=match):
        agent_parts(controller, memory, [], 8, FACTORIES)


def test_a_recipe_is_timed_as_it_trains_clock_and_ppo_settings_included():
    ctl, mem, flags, name = agent_parts(None, None, ["configs/agents/memory_agent.yaml"], 8, FACTORIES)
    assert flags["memory_clock"] == 64 and flags["memory_sees_input"] is True and flags["lr"] == 0.001
    assert mem.query_size == ctl.output_size + ctl.input_size + 64
    assert name == "GRU + KVMemory"


def test_a_model_key_that_is_no_agent_setting_is_named(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("model:\n  memory_clok: 8\n")
    with pytest.raises(ConfigError, match=r"model keys \['memory_clok'\] are not RecurrentPPO settings"):
        agent_parts("gru", None, [str(config)], 8, FACTORIES)
