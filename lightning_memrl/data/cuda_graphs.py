"""Acting without per-step launch overhead: one acting step captured as a CUDA graph and replayed.

A step of acting (encoder, controller and memory step, heads, sampling, the env step, the bookkeeping of
the rollout) is a hundred or more small kernels; on a GPU their launches, not their arithmetic, set the
pace at a few thousand envs. A CUDA graph records the kernels of one step once and replays them with one
launch. It replays them on the same memory, so the step must read and write only tensors that stay at
their addresses (static buffers, updated in place), take no host-side branch and never wait for the
device. `ActingGraph` owns that: it decides by `data.cuda_graphs` (`auto`, `on`, `off`) whether to
capture, checks the step keeps its tensors in place, captures it, and hands back either the graph's
replay or the eager step, saying why whenever it falls back (never a crash, never silently):

- `off`: always eager.
- `auto` (default): capture on a CUDA device where nothing blocks it; quiet on a CPU, where no graph is
  expected; a warning naming the reason where a CUDA run cannot capture.
- `on`: as `auto`, but a warning on any device where it cannot capture (a CPU included).

Randomness inside the graph: every generator the step draws from is registered with the graph, so each
replay advances its Philox offset exactly as the eager step does (and the same seed gives the same draws).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from lightning_memrl.errors import ConfigError

CUDA_GRAPHS_MODES = ("auto", "on", "off")

Step = Callable[[], None]


def check_cuda_graphs(mode: str) -> str:
    """`mode` if it is one of `CUDA_GRAPHS_MODES`, else a `ConfigError` listing them."""
    if mode not in CUDA_GRAPHS_MODES:
        raise ConfigError(f"data.cuda_graphs must be one of {CUDA_GRAPHS_MODES}, got {mode!r}")
    return mode


class CaptureRefused(RuntimeError):
    """The step cannot be replayed as a graph; the message says why."""


class GraphBackend(Protocol):
    """How a step is warmed up and captured (CUDA graphs; tests use a CPU stand-in)."""

    def blocker(self, device: torch.device) -> str | None:
        """Why nothing can be captured on `device` (None: it can)."""

    def warmup(self) -> Any:
        """A context the warm-up steps run in."""

    def capture(self, step: Step, generators: Sequence[torch.Generator]) -> Step:
        """Capture `step` (its draws from `generators` advance them at each replay); return the replay."""


class CudaGraphBackend:
    """`torch.cuda.CUDAGraph`: warm-up on a side stream, capture, `replay`."""

    def blocker(self, device: torch.device) -> str | None:
        if device.type != "cuda":
            return f"the envs are on {device.type}; CUDA graphs need a CUDA device"
        return None

    @contextmanager
    def warmup(self) -> Iterator[None]:
        # the recipe of the CUDA graphs notes: warm-up work on a side stream, joined before capture
        main = torch.cuda.current_stream()
        side = torch.cuda.Stream()
        side.wait_stream(main)
        try:
            with torch.cuda.stream(side):
                yield
        finally:
            main.wait_stream(side)

    def capture(self, step: Step, generators: Sequence[torch.Generator]) -> Step:
        graph = torch.cuda.CUDAGraph()
        for generator in generators:
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph):
            step()
        return graph.replay  # the bound method keeps the graph (and its memory pool) alive


def default_generator(device: torch.device) -> torch.Generator:
    """The global generator of `device` (what a draw without `generator=` uses)."""
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


class _Snapshot:
    """Values of tensors, an env and generators, put back after the warm-up steps changed them."""

    def __init__(self, tensors: Sequence[torch.Tensor], env: Any, generators: Sequence[torch.Generator]):
        self.tensors = list(tensors)
        self.values = [t.clone() for t in self.tensors]
        self.env, self.env_state = env, env.state_dict()
        self.generators = list(generators)
        self.generator_states = [g.get_state() for g in self.generators]

    def restore(self) -> None:
        for tensor, value in zip(self.tensors, self.values, strict=True):
            tensor.copy_(value)
        self.env.load_state_dict(self.env_state)
        for generator, state in zip(self.generators, self.generator_states, strict=True):
            generator.set_state(state)


def _host_state(objects: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """What a graph cannot follow, by name: each tensor attribute's identity, each plain value, each
    other attribute's identity (a module's parameters and buffers included)."""
    seen: dict[str, Any] = {}
    for prefix, obj in objects:
        attributes = dict(vars(obj))
        if isinstance(obj, nn.Module):
            attributes.update(obj._parameters)
            attributes.update(obj._buffers)
        for name, value in attributes.items():
            if isinstance(value, int | float | bool | str | type(None)):
                seen[f"{prefix}{name}"] = value
            else:
                seen[f"{prefix}{name}"] = ("object", id(value))
    return seen


def _watched(env: Any, policy: Any) -> list[tuple[str, Any]]:
    objects: list[tuple[str, Any]] = [(f"{type(env).__name__}.", env)]
    if isinstance(policy, nn.Module):
        objects += [(f"{type(policy).__name__}.{name}{'.' if name else ''}", m) for name, m in policy.named_modules()]
    return objects


def capture_step(
    step: Step,
    *,
    tensors: Sequence[torch.Tensor],
    env: Any,
    policy: Any,
    generators: Sequence[torch.Generator],
    device: torch.device,
    backend: GraphBackend,
    warmup_steps: int = 2,
) -> Step:
    """Capture `step`, which reads and writes `tensors` (and `env`'s state) in place, and return its replay.

    The warm-up steps initialise what runs lazily (library handles, kernels); between the last two the
    step must leave every attribute of `env` and of `policy`'s modules as it was (a tensor replaced by a
    new one, or a host-side counter, is what a graph would not follow: `CaptureRefused` names it). What
    the warm-up changed (`tensors`, the env, the generators, the global one of `device` included) is put
    back before the capture, so the first replay continues exactly where the eager step would.
    """
    snapshot = _Snapshot(tensors, env, [*generators, default_generator(device)])
    watched = _watched(env, policy)
    try:
        with backend.warmup():
            for _ in range(warmup_steps - 1):
                step()
            before = _host_state(watched)
            step()
            after = _host_state(watched)
    finally:
        snapshot.restore()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if changed:
        raise CaptureRefused(
            f"a step changes {', '.join(changed[:5])} on the host (a new tensor, or a Python value) instead of "
            "updating tensors in place: a graph would replay stale values"
        )
    return backend.capture(step, [g for g in generators if g is not default_generator(device)])


def policy_signature(policy: Any) -> tuple:
    """What a captured step depends on besides its buffers: the policy object, its mode, and where each
    parameter and buffer lives (moving the module, or loading new tensors into it, changes this)."""
    if not isinstance(policy, nn.Module):
        return (id(policy),)
    tensors = [*policy.parameters(), *policy.buffers()]
    return (id(policy), policy.training, tuple((id(t), t.data_ptr()) for t in tensors))


class ActingGraph:
    """An acting step function run eagerly or as a CUDA graph, as `data.cuda_graphs` asks and allows.

    Args:
        mode: `auto`, `on` or `off` (see the module doc).
        what: how messages name the step (`"acting"`, `"evaluation"`).
        backend: how to capture (`CudaGraphBackend`; tests pass a CPU stand-in).

    Attributes:
        ran: what the last `prepare` chose: `"cuda graph"`, or `"eager"` with the reason in brackets.
    """

    def __init__(self, mode: str = "auto", what: str = "acting", backend: GraphBackend | None = None):
        self.mode = check_cuda_graphs(mode)
        self.what = what
        self.backend = backend or CudaGraphBackend()
        self.ran = "eager (not run yet)"
        self._key: tuple | None = None
        self._replay: Step | None = None

    def invalidate(self) -> None:
        """Forget the capture (the step's tensors were replaced): the next `prepare` decides again."""
        self._key, self._replay = None, None

    def prepare(
        self,
        step: Step,
        *,
        key: tuple,
        policy: Any,
        env: Any,
        device: torch.device,
        tensors: Sequence[torch.Tensor],
        generators: Sequence[torch.Generator],
    ) -> Step:
        """The function to call once per step: the graph's replay, or `step` itself.

        Captures at the first call, and again whenever `key` (what the step was built with) or the policy's
        signature changes; a refusal is remembered for the same key (no retry, one message).

        Args:
            step: one acting step over `tensors` (and the env's state), in place.
            key: what else the step depends on (its options, the env object).
            policy: the policy the step acts with.
            env: the task it steps (its `keep_in_place()` is turned on for a capture).
            device: the device of the envs.
            tensors: every tensor the step reads or writes, besides the env's and the policy's.
            generators: the generators the step draws from (registered with the graph).
        """
        full_key = (key, policy_signature(policy))
        if full_key == self._key:
            return self._replay or step
        self._key, self._replay = full_key, None
        if self.mode == "off":
            self.ran = "eager (data.cuda_graphs=off)"
            return step
        no_graphs_here = self.backend.blocker(device)
        reasons = [no_graphs_here] if no_graphs_here else []
        if not getattr(env, "capturable", False) or not hasattr(env, "keep_in_place"):
            reasons.append(f"{type(env).__name__} steps outside torch")
        blockers = getattr(policy, "cuda_graph_blockers", None)
        reasons += blockers() if blockers is not None else []
        if reasons:  # `auto` where no graph can run at all (a CPU) expected none: quiet
            return self._eager(step, "; ".join(reasons), quiet=self.mode == "auto" and no_graphs_here is not None)
        env.keep_in_place(True)
        try:
            self._replay = capture_step(
                step,
                tensors=tensors,
                env=env,
                policy=policy,
                generators=generators,
                device=device,
                backend=self.backend,
            )
        except Exception as error:  # any failure to capture falls back to the eager step, said aloud
            env.keep_in_place(False)
            return self._eager(step, f"capture failed: {type(error).__name__}: {error}", quiet=False)
        self.ran = "cuda graph"
        return self._replay

    def _eager(self, step: Step, why: str, quiet: bool) -> Step:
        self.ran = f"eager ({why})"
        if not quiet:
            rank_zero_warn(f"data.cuda_graphs={self.mode}: {self.what} runs eagerly, not as a CUDA graph: {why}")
        return step


def write_at(buffer: torch.Tensor, index: torch.Tensor, value: torch.Tensor) -> None:
    """`buffer[index] = value` for a one-element device `index` (no host sync, so a graph can hold it)."""
    value = value if value.dtype == buffer.dtype else value.to(buffer.dtype)
    buffer.index_put_((index,), value.unsqueeze(0))
