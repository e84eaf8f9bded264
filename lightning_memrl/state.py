"""Recurrent state as a tree of tensors.

Controllers and memories carry their state as a tensor, or a tuple / dict of tensors, every leaf
batch first (`[B, ...]`). These helpers apply one operation to every leaf, so storage, masking and
indexing of states are written once for every kind of state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

State = Any  # a torch.Tensor, or a (nested) tuple / dict of tensors, batch first


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: State) -> State:
    """Apply `fn` to every tensor of `state`."""
    return tree_map(fn, state)


def map_states(fn: Callable[..., torch.Tensor], *states: State) -> State:
    """Apply `fn` leaf-wise across states of the same structure."""
    leaves = [tree_flatten(s)[0] for s in states]
    _, spec = tree_flatten(states[0])
    return tree_unflatten([fn(*group) for group in zip(*leaves, strict=True)], spec)


def mask_state(state: State, reset: torch.Tensor) -> State:
    """Zero the state of the batch rows where `reset[B]` is true."""
    keep = (~reset).to(torch.float32)

    def apply(x: torch.Tensor) -> torch.Tensor:
        return x * keep.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))

    return tree_map(apply, state)


def index_state(state: State, index: torch.Tensor | slice) -> State:
    """Select batch rows of every leaf."""
    return tree_map(lambda x: x[index], state)


def stack_states(states: list[State], dim: int = 0) -> State:
    """Stack a list of same-structure states along a new dim."""
    return map_states(lambda *xs: torch.stack(xs, dim=dim), *states)


def detach_state(state: State) -> State:
    """Cut the graph behind every leaf."""
    return tree_map(lambda x: x.detach(), state)


def clone_state(state: State) -> State:
    """Copy every leaf (so a stored state is not changed in place later)."""
    return tree_map(lambda x: x.clone(), state)


def copy_state_(dst: State, src: State) -> None:
    """Write every leaf of `src` into the leaf of `dst` at the same place, in place (same structure)."""
    dst_leaves, dst_spec = tree_flatten(dst)
    src_leaves, src_spec = tree_flatten(src)
    if dst_spec != src_spec:
        raise ValueError(f"copy_state_ needs states of one structure, got {dst_spec} and {src_spec}")
    copy_leaves_(dst_leaves, src_leaves)


def copy_leaves_(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    """`dst[i].copy_(src[i])` for each pair, skipping a leaf that is its own source (written in place)."""
    for d, s in zip(dst, src, strict=True):
        if s is not d:
            d.copy_(s)


def state_leaves(state: State) -> list[torch.Tensor]:
    """The tensors of `state`, in a fixed order."""
    return tree_flatten(state)[0]


def same_layout(a: State, b: State) -> bool:
    """Whether two states have one structure and, leaf by leaf, one shape, dtype and device."""
    a_leaves, a_spec = tree_flatten(a)
    b_leaves, b_spec = tree_flatten(b)
    return a_spec == b_spec and all(
        x.shape == y.shape and x.dtype == y.dtype and x.device == y.device
        for x, y in zip(a_leaves, b_leaves, strict=True)
    )
