"""Acting on static buffers, captured as a CUDA graph: the same rollouts and evaluations as eager acting.

On the CPU: the collector's in-place step equals the plain acting loop it replaced, exactly; the capture
logic (warm-up, restore, the checks that a step keeps its tensors in place, the fallback) runs with a CPU
stand-in for the CUDA graph; the `data.cuda_graphs` switch says what ran. On CUDA (`gpu` marker): graph
replay equals eager acting for every controller and memory.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import pytest
import torch
from torch import nn

from lightning_memrl.agents import RecurrentPPO
from lightning_memrl.controllers import GRU, LSTM
from lightning_memrl.data import Evaluator, RolloutCollector, RolloutDataModule, evaluate
from lightning_memrl.data.cuda_graphs import ActingGraph
from lightning_memrl.data.gae import compute_gae
from lightning_memrl.envs import make_task
from lightning_memrl.envs.delayed_cue import DelayedCue
from lightning_memrl.envs.previous_action import with_previous_action
from lightning_memrl.errors import ConfigError
from lightning_memrl.memory import EpisodicMemory, KVMemory
from lightning_memrl.state import clone_state, stack_states
from lightning_memrl.tools.bench.controllers import controller_factories

ROLLOUT_FIELDS = ("obs", "starts", "actions", "log_probs", "values", "rewards", "terminated", "truncated")
ROLLOUT_FIELDS += ("next_values", "advantages", "returns")


class StandIn:
    """A CPU stand-in for `CudaGraphBackend`: the 'graph' replays by calling the step; counts captures."""

    def __init__(self, fail: str | None = None):
        self.captures = 0
        self.fail = fail

    def blocker(self, device: torch.device) -> str | None:
        return None

    def warmup(self):
        return nullcontext()

    def capture(self, step, generators):
        self.captures += 1
        if self.fail:
            raise RuntimeError(self.fail)
        return step


def _agent(env, memory=None, controller=None, **kwargs) -> RecurrentPPO:
    """An agent whose actions depend strongly on observation and state."""
    from lightning_memrl.specs import env_spec_of

    agent = RecurrentPPO(controller or GRU(16), env_spec=env_spec_of(env), memory=memory, **kwargs)
    with torch.no_grad():
        agent.actor.weight.mul_(300.0)
        agent.critic.weight.mul_(10.0)
    return agent


def _env(name="t_maze", num_envs=6, device="cpu", **kwargs):
    kwargs = kwargs or ({"horizon": 4, "time_limit": 6} if name == "t_maze" else {"horizon": 5})
    return make_task(name, num_envs, device=device, seed=3, **kwargs)


def _reference_rollouts(env, policy, T, L, b, rollouts, seed):
    """The plain acting loop the collector ran before its step went in place (kept here as the reference)."""
    n, dev = env.num_envs, env.device
    generator = torch.Generator(device=dev).manual_seed(0)
    obs, _ = env.reset(seed=seed)
    start = torch.ones(n, dtype=torch.bool, device=dev)
    hist_obs = torch.zeros(b, n, obs.shape[-1], device=dev)
    hist_starts = torch.ones(b, n, dtype=torch.bool, device=dev)
    hist_state = policy.initial_state(n, dev)
    state = clone_state(hist_state)
    if b:
        state = policy.advance_state(hist_obs.transpose(0, 1), state, hist_starts.T)
    ep_return, ep_length = torch.zeros(n, device=dev), torch.zeros(n, dtype=torch.long, device=dev)
    out = []
    for _ in range(rollouts):
        rec = {k: [] for k in ("obs", "starts", "actions", "log_probs", "values", "rewards", "term", "trunc")}
        final_values = torch.zeros(T, n, device=dev)
        seq_states, finished = [hist_state], torch.zeros(4, device=dev)
        for t in range(T):
            if (t + b) % L == 0 and t > 0 and t + b < T:
                seq_states.append(clone_state(state))
            if t + b == T and t > 0:
                next_hist_state = clone_state(state)
            rec["obs"].append(obs)
            rec["starts"].append(start)
            step = policy.act(obs, state, start, generator=generator)
            obs, reward, term, trunc, info = env.step(step.action)
            rec["actions"].append(step.action)
            rec["log_probs"].append(step.log_prob)
            rec["values"].append(step.value)
            rec["rewards"].append(reward)
            rec["term"].append(term)
            rec["trunc"].append(trunc)
            state = step.state
            if env.can_truncate and bool(trunc.any()):
                no_reset = torch.zeros(n, dtype=torch.bool, device=dev)
                final_value = policy.predict_value(info["final_observation"], state, no_reset)
                final_values[t] = torch.where(trunc, final_value, 0.0)
            done = term | trunc
            ep_return += reward
            ep_length += 1
            finished += torch.stack(
                [done.sum(), (ep_return * done).sum(), (ep_length * done).sum(), info["success"].sum()]
            ).float()
            ep_return, ep_length = ep_return * ~done, ep_length * ~done
            start = done
        if b == 0:
            next_hist_state = clone_state(state)
        r = {k: torch.stack(v) for k, v in rec.items()}
        last_value = policy.predict_value(obs, state, start)
        next_values = torch.where(r["trunc"], final_values, torch.cat([r["values"][1:], last_value[None]]))
        advantages, returns = compute_gae(r["rewards"], r["values"], next_values, r["term"], r["trunc"], 0.99, 0.95)
        out.append(
            {
                "obs": torch.cat([hist_obs, r["obs"]]),
                "starts": torch.cat([hist_starts, r["starts"]]),
                "actions": r["actions"],
                "log_probs": r["log_probs"],
                "values": r["values"],
                "rewards": r["rewards"],
                "terminated": r["term"],
                "truncated": r["trunc"],
                "next_values": next_values,
                "advantages": advantages,
                "returns": returns,
                "sequence_states": stack_states(seq_states),
                "episodes": finished[0],
                "episode_return": finished[1] / finished[0].clamp_min(1),
                "success_rate": finished[3] / finished[0].clamp_min(1),
            }
        )
        hist_obs, hist_starts, hist_state = r["obs"][T - b :], r["starts"][T - b :], next_hist_state
    return out


def _assert_same_rollout(ours, ref, exact=True):
    check = torch.equal if exact else lambda a, b: torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    for name in ROLLOUT_FIELDS:
        a, b = getattr(ours, name), ref[name] if isinstance(ref, dict) else getattr(ref, name)
        assert a.dtype == b.dtype and check(a, b), name
    theirs = ref["sequence_states"] if isinstance(ref, dict) else ref.sequence_states
    for a, b in zip(*(torch.utils._pytree.tree_flatten(s)[0] for s in (ours.sequence_states, theirs)), strict=True):
        assert check(a, b), "sequence_states"


def _collector(env, burn_in=3, cuda_graphs="off", backend=None):
    collector = RolloutCollector(env, 24, 8, burn_in, 0.99, 0.95, seed=0, cuda_graphs=cuda_graphs)
    if backend is not None:
        collector.graph = ActingGraph(cuda_graphs, "acting", backend=backend)
    return collector


# --- the in-place step equals the plain acting loop ---------------------------------------------------
@pytest.mark.parametrize("task", ["t_maze", "delayed_cue"])
@pytest.mark.parametrize("memory", [None, "kv_age"])
@pytest.mark.parametrize("burn_in", [0, 3])
def test_in_place_acting_step_equals_the_plain_acting_loop(task, memory, burn_in):
    """Collection through the static-buffer step (eager, CPU) gives exactly the rollouts of the plain loop:
    same observations, actions, log-probs, values, bootstraps, GAE and stored states; t_maze truncates."""
    rollouts = {}
    for kind in ("ours", "reference"):
        torch.manual_seed(0)
        env = _env(task)
        mem = KVMemory(16, capacity=4, num_heads=2, head_dim=4, age_bias=True) if memory else None
        if mem is not None:
            with torch.no_grad():
                mem.age_bias.normal_()
        agent = _agent(env, memory=mem)
        if kind == "ours":
            collector = _collector(env, burn_in)
            rollouts[kind] = [collector.collect(agent, seed=7) for _ in range(3)]
        else:
            rollouts[kind] = _reference_rollouts(env, agent, 24, 8, burn_in, 3, seed=7)
    if task == "t_maze":
        assert any(r.truncated.any() for r in rollouts["ours"]), "the test needs truncated episodes"
    for ours, ref in zip(rollouts["ours"], rollouts["reference"], strict=True):
        _assert_same_rollout(ours, ref)
        for name in ("episodes", "episode_return", "success_rate"):
            assert torch.equal(ours.stats[name], ref[name]), name


def test_in_place_evaluation_equals_the_plain_loop():
    """`evaluate` (the in-place step) gives what the plain loop it replaced gave."""
    torch.manual_seed(0)
    env = _env("t_maze", num_envs=8)
    agent = _agent(env)
    ours = evaluate(agent, env, num_episodes=20, seed=5, greedy=False)
    # the plain loop, sampling from the global generator as `greedy=False` does
    torch.manual_seed(0)
    env, n = _env("t_maze", num_envs=8), 8
    agent = _agent(env)
    obs, _ = env.reset(seed=5)
    state, start = agent.initial_state(n), torch.ones(n, dtype=torch.bool)
    counted, ep_return, ep_length, totals = torch.zeros(n, dtype=torch.long), torch.zeros(n), torch.zeros(n), [0.0] * 3
    for step in range(1_000_000):
        act = agent.act(obs, state, start, greedy=False)
        obs, reward, term, trunc, info = env.step(act.action)
        state, done = act.state, term | trunc
        ep_return += reward
        ep_length += 1
        counts = done & (counted < 3)
        totals = [totals[0] + (ep_return * counts).sum(), totals[1] + (ep_length * counts).sum(), totals[2]]
        totals[2] = totals[2] + (info["success"] & counts).sum()
        counted += counts.long()
        ep_return, ep_length, start = ep_return * ~done, ep_length * ~done, done
        if step % 64 == 63 and bool((counted >= 3).all()):
            break
    episodes = counted.sum()
    assert torch.equal(ours["episodes"], episodes.float())
    torch.testing.assert_close(ours["return_mean"], totals[0] / episodes, rtol=0, atol=0)
    torch.testing.assert_close(ours["length_mean"], totals[1] / episodes, rtol=0, atol=0)
    torch.testing.assert_close(ours["success_rate"], totals[2] / episodes, rtol=0, atol=0)


# --- capture and replay, with a CPU stand-in for the graph ---------------------------------------------
@pytest.fixture(params=[False, True], ids=["cpu_paths", "accelerator_paths"])
def accelerator_paths(request, monkeypatch):
    """Also run the paths a CUDA device takes on this CPU: a bootstrap value every step, episode content
    drawn for every row."""
    if request.param:
        from lightning_memrl.data import collector
        from lightning_memrl.envs import sampling

        monkeypatch.setattr(collector, "bootstraps_without_sync", lambda device: True)
        monkeypatch.setattr(sampling, "draws_every_row", lambda device: True)
    return request.param


@pytest.mark.parametrize("previous_action", [False, True])
@pytest.mark.parametrize("task", ["t_maze", "copy_memory"])
def test_replay_continues_exactly_where_eager_acting_would(task, previous_action, accelerator_paths):
    """The warm-up steps before a capture change buffers, env and generators; they are put back, so the
    replayed rollouts equal eager ones step for step (and the capture is reused from rollout to rollout),
    also with the previous action in the observations (`data.previous_action`)."""
    kwargs = {"horizon": 6, "vocab_size": 3, "seq_len": 2} if task == "copy_memory" else {}
    rollouts = []
    for backend in (StandIn(), None):
        torch.manual_seed(0)
        env = with_previous_action(_env(task, **kwargs), previous_action)
        agent = _agent(env)
        if backend is None:
            env.keep_in_place()  # what a capture turns on: the same episodes as the replayed ones
            collector = _collector(env)
        else:
            collector = _collector(env, cuda_graphs="on", backend=backend)
        rollouts.append([collector.collect(agent, seed=7) for _ in range(2)])
        if backend is not None:
            assert collector.acting == "cuda graph" and backend.captures == 1
    for ours, ref in zip(*rollouts, strict=True):
        _assert_same_rollout(ours, ref)


def test_a_capture_is_redone_when_the_step_tensors_or_the_parameters_are_replaced():
    torch.manual_seed(0)
    env = _env()
    agent = _agent(env)
    backend = StandIn()
    collector = _collector(env, cuda_graphs="on", backend=backend)
    collector.collect(agent)
    with torch.no_grad():  # an optimizer step updates in place: the graph reads the new values
        agent.critic.weight.add_(1.0)
    collector.collect(agent)
    assert backend.captures == 1
    agent.critic.weight = nn.Parameter(agent.critic.weight.detach().clone())  # a new tensor: capture again
    collector.collect(agent)
    assert backend.captures == 2
    collector.load_state_dict(collector.state_dict())  # resumed: new buffers, capture again
    collector.collect(agent)
    assert backend.captures == 3


def test_a_failed_capture_falls_back_to_eager_acting_with_a_warning():
    torch.manual_seed(0)
    env = _env()
    agent = _agent(env)
    collector = _collector(env, cuda_graphs="auto", backend=StandIn(fail="operation not permitted when capturing"))
    with pytest.warns(UserWarning, match="acting runs eagerly, not as a CUDA graph: capture failed: RuntimeError"):
        rollouts = [collector.collect(agent, seed=7) for _ in range(2)]
    assert collector.acting.startswith("eager (capture failed")
    assert not env.kept_in_place  # the env is clocked again
    torch.manual_seed(0)
    env = _env()
    reference = _collector(env).collect(_agent(env), seed=7)
    _assert_same_rollout(rollouts[0], reference)  # eager from the first step: nothing lost


class _LeakyCue(DelayedCue):
    """A task that keeps a tensor the step replaces and `_state_tensors` does not list."""

    def _advance(self, actions):
        self.last_actions = actions.clone()
        return super()._advance(actions)


class _CountingKV(KVMemory):
    """A memory that counts its steps on the host."""

    steps = 0

    def forward_step(self, query, state, reset):
        self.steps += 1
        return super().forward_step(query, state, reset)


@pytest.mark.parametrize(
    "make, named",
    [
        (lambda: (_LeakyCue(6, horizon=5, seed=3), None), "_LeakyCue.last_actions"),
        (lambda: (_env(), KVMemory(16, capacity=4, num_heads=2, head_dim=4)), None),
        (lambda: (_env(), _CountingKV(16, capacity=4, num_heads=2, head_dim=4)), "RecurrentPPO.memory.steps"),
    ],
)
def test_a_step_that_changes_host_state_is_refused_by_name(make, named):
    """A graph replays on fixed memory and runs no Python: a step that replaces a tensor attribute or counts
    on the host would be replayed wrong, so the capture is refused, saying which attribute."""
    env, memory = make()
    collector = _collector(env, cuda_graphs="on", backend=StandIn())
    if named is None:  # the control: the same step without the leak is captured
        collector.collect(_agent(env, memory=memory))
        assert collector.acting == "cuda graph"
        return
    with pytest.warns(UserWarning, match=f"capture failed: CaptureRefused: a step changes {named}"):
        collector.collect(_agent(env, memory=memory))
    assert collector.acting.startswith("eager (capture failed: CaptureRefused")


def test_an_episodic_memory_or_a_gym_env_acts_eagerly_and_says_why():
    torch.manual_seed(0)
    env = _env()
    episodic = EpisodicMemory(16, 8, k=2, capacity=500, backend="exact")
    collector = _collector(env, cuda_graphs="auto", backend=StandIn())
    with pytest.warns(UserWarning, match="EpisodicMemory: its store is shared outside the recurrent state"):
        collector.collect(_agent(env, memory=episodic))
    assert "EpisodicMemory" in collector.acting

    import gymnasium as gym  # noqa: F401

    from lightning_memrl.envs.registry import make_task as make

    gym_env = make("gym:CartPole-v1", 2, "cpu", 0)
    collector = RolloutCollector(gym_env, 8, 8, 0, 0.99, 0.95, cuda_graphs="on")
    collector.graph = ActingGraph("on", "acting", backend=StandIn())
    with pytest.warns(UserWarning, match="GymVectorTask steps outside torch"):
        collector.collect(_agent(gym_env))
    gym_env.close()


def test_evaluation_replays_equal_eager_evaluation():
    torch.manual_seed(0)
    env = _env("t_maze", num_envs=8)
    agent = _agent(env)
    backend = StandIn()
    evaluator = Evaluator(env, cuda_graphs="on")
    evaluator.graph = ActingGraph("on", "evaluation", backend=backend)
    torch.manual_seed(1)  # sampled actions: from the global generator, which the warm-up draws from too
    first, second = (evaluator(agent, 40, seed=s, greedy=False) for s in (5, 6))
    assert evaluator.acting == "cuda graph" and backend.captures == 1  # the env reset in place: reused
    reference_env = _env("t_maze", num_envs=8)
    reference_env.keep_in_place()
    torch.manual_seed(1)
    for ours, seed in ((first, 5), (second, 6)):
        theirs = evaluate(agent, reference_env, 40, seed=seed, greedy=False)
        assert ours.keys() == theirs.keys()
        for name in ours:
            assert torch.equal(ours[name], theirs[name]), name


def test_evaluation_inside_and_outside_inference_mode_shares_its_tensors():
    """Lightning validates under `torch.inference_mode()`; the final evaluation runs outside it. The tensors
    kept from call to call (and the in-place env's) must take in-place updates in both."""
    env = _env("t_maze", num_envs=4)
    agent = _agent(env)
    evaluator = Evaluator(env, cuda_graphs="on")
    evaluator.graph = ActingGraph("on", "evaluation", backend=StandIn())
    with torch.inference_mode():
        inside = evaluator(agent, 8, seed=5)
    outside = evaluator(agent, 8, seed=5)
    assert evaluator.acting == "cuda graph"
    for name in inside:
        assert torch.equal(inside[name], outside[name]), name


# --- the switch ------------------------------------------------------------------------------------
def _dm(**kwargs):
    dm = RolloutDataModule(
        env_kwargs={"horizon": 5}, num_envs=4, rollout_steps=8, seq_len=8, num_minibatches=1, eval_envs=4, **kwargs
    )
    dm.setup("fit")
    return dm


def test_cuda_graphs_switch_is_validated():
    with pytest.raises(ConfigError, match=r"data.cuda_graphs must be one of \('auto', 'on', 'off'\), got 'yes'"):
        RolloutDataModule(cuda_graphs="yes")


def test_cuda_graphs_on_a_cpu_warns_and_acts_eagerly():
    dm = _dm(cuda_graphs="on")
    agent = RecurrentPPO(GRU(8), env_spec=dm.env_spec)
    with pytest.warns(UserWarning, match="the envs are on cpu; CUDA graphs need a CUDA device") as record:
        list(dm.iterate(agent))
        dm.evaluate(agent, 4)
    messages = [str(w.message) for w in record if "cuda_graphs" in str(w.message)]
    assert any("acting runs eagerly" in m for m in messages) and any("evaluation runs eagerly" in m for m in messages)
    ran = "eager (the envs are on cpu; CUDA graphs need a CUDA device)"
    assert dm.acting["collect"] == dm.acting["evaluate"] == ran


@pytest.mark.parametrize("mode, ran", [("auto", "eager (the envs are on cpu"), ("off", "eager (data.cuda_graphs=off)")])
def test_cuda_graphs_auto_and_off_on_a_cpu_are_quiet(mode, ran):
    dm = _dm(cuda_graphs=mode)
    agent = RecurrentPPO(GRU(8), env_spec=dm.env_spec)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        list(dm.iterate(agent))
        dm.evaluate(agent, 4)
    assert not [w for w in record if "cuda_graphs" in str(w.message)]
    assert dm.acting["collect"].startswith(ran) and dm.acting["evaluate"].startswith(ran)


# --- on CUDA: graph replay equals eager acting for every controller and memory ------------------------
def _memories() -> dict:
    from tests.memory.conftest import MEMORIES

    return MEMORIES


def _gated_parallel():
    from lightning_memrl.memory import ParallelMemory, SlotMemory
    from tests.memory.conftest import QUERY

    return ParallelMemory([SlotMemory(QUERY, num_slots=4, slot_dim=6), KVMemory(QUERY, 5, 2, 3)], fusion="gate")


GPU_CASES = [(name, None, {}) for name in controller_factories("auto", context=16)]
GPU_CASES += [("gru", name, {}) for name in sorted(_memories())]
GPU_CASES += [("gru", "kv_age", {"memory_sees_input": True}), ("gru", "kv", {"feed_memory_back": True})]
GPU_CASES += [("gru", "parallel_gated", {})]


def _case_agent(env, controller, memory, flags):
    from tests.memory.conftest import QUERY

    hidden = 16 if memory is None else QUERY // 2 if flags.get("memory_sees_input") else QUERY
    ctl = controller_factories("auto", context=16)[controller](hidden)
    make = _gated_parallel if memory == "parallel_gated" else _memories().get(memory)
    return _agent(env, controller=ctl, memory=make() if make else None, **flags)


@pytest.mark.parametrize("controller, memory, flags", GPU_CASES)
def test_every_controller_and_memory_step_passes_the_capture_checks(controller, memory, flags):
    """With the CPU stand-in: no controller or memory keeps host state in its acting step (a diagnostic
    written by `forward_step` would make the capture refuse it on CUDA)."""
    env = _env("t_maze", num_envs=4)
    collector = RolloutCollector(env, 8, 8, 0, 0.99, 0.95, cuda_graphs="on")
    collector.graph = ActingGraph("on", "acting", backend=StandIn())
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="data.cuda_graphs")
        collector.collect(_case_agent(env, controller, memory, flags))
    assert collector.acting == "cuda graph"


@pytest.mark.gpu
@pytest.mark.parametrize("controller, memory, flags", GPU_CASES)
def test_graph_replay_equals_eager_acting_on_cuda(controller, memory, flags):
    """Every controller (alone) and every memory (with a GRU): two rollouts replayed as a CUDA graph equal
    eager acting on the same in-place env: actions, log-probs, values, GAE, stored and final states."""
    results = {}
    for mode in ("off", "on"):
        torch.manual_seed(0)
        env = _env("t_maze", num_envs=16, device="cuda")
        if mode == "off":
            env.keep_in_place()  # the episodes a capture sees
        agent = _case_agent(env, controller, memory, flags).cuda()
        collector = RolloutCollector(env, 24, 8, 3, 0.99, 0.95, seed=0, cuda_graphs=mode)
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="data.cuda_graphs")  # no fallback allowed here
            rollouts = [collector.collect(agent, seed=7) for _ in range(2)]
        results[mode] = (rollouts, collector)
    (eager, eager_collector), (replayed, graphed) = results["off"], results["on"]
    assert graphed.acting == "cuda graph", graphed.acting
    for ours, ref in zip(replayed, eager, strict=True):
        assert torch.equal(ours.actions, ref.actions)
        _assert_same_rollout(ours, ref, exact=False)
    for a, b in zip(*(torch.utils._pytree.tree_flatten(c.state)[0] for c in (graphed, eager_collector)), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(graphed.generator.get_state(), eager_collector.generator.get_state())


@pytest.mark.gpu
def test_an_episodic_memory_on_cuda_falls_back_with_a_warning():
    env = _env("t_maze", num_envs=8, device="cuda")
    agent = _agent(env, memory=EpisodicMemory(16, 8, k=2, capacity=1000, backend="exact")).cuda()
    collector = RolloutCollector(env, 24, 8, 0, 0.99, 0.95, cuda_graphs="auto")
    with pytest.warns(UserWarning, match="acting runs eagerly, not as a CUDA graph: EpisodicMemory"):
        rollout = collector.collect(agent)
    assert torch.isfinite(rollout.values).all()


@pytest.mark.gpu
@pytest.mark.parametrize("make", [lambda: GRU(16), lambda: LSTM(16)])
def test_graph_evaluation_equals_eager_evaluation_on_cuda(make):
    results = []
    for mode in ("off", "on"):
        torch.manual_seed(0)
        env = _env("t_maze", num_envs=16, device="cuda")
        env.keep_in_place()
        agent = _agent(env, controller=make()).cuda()
        evaluator = Evaluator(env, cuda_graphs=mode)
        results.append([evaluator(agent, 40, seed=s) for s in (5, 6)])
        if mode == "on":
            assert evaluator.acting == "cuda graph"
    for ours, theirs in zip(*results, strict=True):
        for name in ours:
            torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=0)


@pytest.mark.gpu
def test_fit_on_gpu_with_cuda_graphs_captures_collection_and_evaluation():
    import lightning as L

    L.seed_everything(0)
    dm = RolloutDataModule(env_kwargs={"horizon": 8}, num_envs=64, rollout_steps=32, seq_len=32, num_minibatches=4)
    agent = RecurrentPPO(GRU(32), env_spec=dm.env_spec)
    trainer = L.Trainer(
        accelerator="gpu", devices=1, max_epochs=3, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, check_val_every_n_epoch=1, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(agent, dm)
    assert dm.acting == {"collect": "cuda graph", "evaluate": "cuda graph"}
    assert torch.isfinite(trainer.callback_metrics["train/value_loss"])
