"""`memrl export`: the exported step module acts as the agent does (actions, values, state), with resets."""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.agents.step_module import PolicyStep
from lightning_memrl.controllers import GRU, LSTM
from lightning_memrl.envs.registry import make_task
from lightning_memrl.tools.export import export_policy
from lightning_memrl.tools.main import main
from tests.envs import toy_gym_envs  # noqa: F401  (registers Masked-v0, Spaces-v0)

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DICT = gym.spaces.Dict(
    {"image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8), "direction": gym.spaces.Discrete(4)}
)
ENVS = {  # name -> (env id, env kwargs, controller)
    "masked_gru": ("gym:Masked-v0", {"episode_length": 4}, lambda: GRU(16)),
    "image_dict_lstm": ("gym:Spaces-v0", {"observation_space": IMAGE_DICT, "episode_length": 5}, lambda: LSTM(16)),
}


def _recorded_rollout(name, steps=14, n=3):
    """A greedy rollout of a fresh agent on the env (episodes end inside it): obs, resets, actions, values."""
    env_id, kwargs, make = ENVS[name]
    env = make_task(env_id, n, seed=0, **kwargs)
    torch.manual_seed(0)
    agent = RecurrentPPO(make(), env_spec=env.env_spec)
    with torch.no_grad():
        agent.actor.weight.mul_(50.0)  # decisive actions: a wrong state or mask would change them
    obs, _ = env.reset(seed=0)
    state, reset = agent.initial_state(n), torch.ones(n, dtype=torch.bool)
    record = []
    for _ in range(steps):
        act = agent.act(obs, state, reset, greedy=True)
        record.append((obs, reset, act.action, act.value))
        obs, _, term, trunc, _ = env.step(act.action)
        state, reset = act.state, term | trunc
    env.close()
    assert any(r[1].any() for r in record[1:]), "episodes should restart inside the rollout"
    return agent, record


def _replay(step_fn, record, state_size):
    state = torch.zeros(record[0][0].shape[0], state_size)
    for obs, reset, action, value in record:
        out_action, logits, out_value, state = step_fn(obs, state, reset)
        torch.testing.assert_close(torch.as_tensor(out_action), action)
        torch.testing.assert_close(torch.as_tensor(out_value), value, atol=1e-5, rtol=1e-5)
        assert torch.isfinite(torch.as_tensor(logits)).all()


@pytest.mark.parametrize("name", sorted(ENVS))
def test_the_step_module_and_its_torch_export_act_as_the_agent(name, tmp_path):
    agent, record = _recorded_rollout(name)
    step = PolicyStep(agent)
    _replay(step, record, step.state_size)
    path = export_policy(agent, tmp_path / "policy.pt2", "torch")
    exported = torch.export.load(path).module()
    _replay(exported, record, step.state_size)
    meta = json.loads(Path(f"{path}.json").read_text())
    assert meta["state_size"] == step.state_size and meta["inputs"] == ["obs", "state", "reset"]


def test_the_onnx_export_acts_as_the_agent(tmp_path):
    ort = pytest.importorskip("onnxruntime")  # the optional [export] extra
    pytest.importorskip("onnxscript")
    agent, record = _recorded_rollout("masked_gru")
    path = export_policy(agent, tmp_path / "policy.onnx", "onnx")
    session = ort.InferenceSession(str(path))

    def run(obs, state, reset):
        feeds = {"obs": obs.numpy(), "state": np.asarray(state, dtype=np.float32), "reset": reset.numpy()}
        return session.run(None, feeds)

    _replay(run, record, PolicyStep(agent).state_size)


@pytest.mark.parametrize("previous_action", [False, True])
def test_memrl_export_from_a_fit_checkpoint_and_the_example_runs_it_without_the_library(
    previous_action, tmp_path, capsys
):
    """Also for a policy that reads its previous action (`data.previous_action`), which the example appends."""
    root = tmp_path / "run"
    fit = [
        "fit", "--config", str(ROOT / "configs/experiments/cartpole_gru.yaml"), "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
        "--data.num_envs", "2", "--data.rollout_steps", "32", "--data.num_minibatches", "1", "--data.eval_envs", "2",
        "--data.previous_action", str(previous_action).lower(),
    ]  # fmt: skip
    assert main(fit) == 0
    ckpt = next(root.glob("**/last.ckpt"))
    assert main(["export", "--ckpt_path", str(ckpt), "--format", "torch"]) == 0
    policy = ckpt.with_name("policy.pt2")
    assert policy.is_file() and "wrote" in capsys.readouterr().out
    assert json.loads(Path(f"{policy}.json").read_text())["previous_action"] is previous_action
    code = (
        "import runpy, sys; sys.argv = ['x', '--policy', sys.argv[1], '--episodes', '2'];"
        "runpy.run_path(sys.argv[0] if False else 'examples/run_exported_policy.py', run_name='__main__');"
        "print('library imported:', 'lightning_memrl' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(policy)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "mean return over 2 episodes" in out
    assert "library imported: False" in out


def test_export_errors_name_the_problem(tmp_path):
    assert main(["export", "--ckpt_path", str(tmp_path / "missing.ckpt")]) == 2
    ckpt = tmp_path / "lonely.ckpt"
    ckpt.write_bytes(b"")
    assert main(["export", "--ckpt_path", str(ckpt)]) == 2
