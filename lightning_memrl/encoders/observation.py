"""The observation encoder chosen by the observation's structure (`EnvSpec.parts`).

A flat observation `[..., D]` (one float vector per step, as the collector stores it) is split into
its parts; each part has its encoder, their features are concatenated and projected to the
controller's input size with a ReLU:

| part kind     | encoder                                                       |
|---------------|---------------------------------------------------------------|
| `image`       | `ImageEncoder`: a CNN sized to the image (`cnn.py`)            |
| `discrete`    | `DiscreteEmbedding`: a learned embedding per component          |
| `vector`      | the raw features (the projection is their MLP layer)           |
| `action_mask` | not encoded (the policy head reads it: `action_mask`)          |

An observation that is one plain vector (the built-in tasks, CartPole, specs saved before parts
existed) gets `FlatEncoder`, one linear layer and a ReLU: the agent's original encoder, with the
same parameter names, so earlier checkpoints load.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_memrl.encoders.cnn import IMAGE_ENCODERS, ImageEncoder, orthogonal_
from lightning_memrl.specs import EnvSpec, ObservationPart

ENCODERS = ("auto", "flat", "grid", "small", "nature")
EMBEDDING_SIZE = 16  # per discrete component


class FlatEncoder(nn.Sequential):
    """`[..., input_size] -> [..., output_size]`: one linear layer (orthogonal, gain sqrt(2)) and a ReLU."""

    def __init__(self, input_size: int, output_size: int):
        super().__init__(orthogonal_(nn.Linear(input_size, output_size)), nn.ReLU())
        self.output_size = output_size


class DiscreteEmbedding(nn.Module):
    """One-hot components `[..., sum(sizes)]` -> concatenated embeddings `[..., len(sizes) * embedding_size]`.

    The one-hot columns select rows of each component's `nn.Embedding` (a product with the table,
    exact for one-hots, so the module reads the flat observation as stored).
    """

    def __init__(self, sizes: tuple[int, ...], embedding_size: int = EMBEDDING_SIZE):
        super().__init__()
        self.sizes = tuple(sizes)
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_size) for n in self.sizes)
        self.output_size = embedding_size * len(self.sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = x.split(list(self.sizes), dim=-1)
        return torch.cat([c @ e.weight for c, e in zip(chunks, self.embeddings, strict=True)], dim=-1)


class ObservationEncoder(nn.Module):
    """Each part of a flat observation through its encoder, concatenated, projected to `output_size`.

    Args:
        parts: the observation's parts in column order (`EnvSpec.parts`).
        output_size: features out (the controller's input size).
        image_encoder: the CNN for every image part: `auto` (by image size), `grid`, `small`, `nature`.
        image_features: features of each image part's CNN (its last linear layer).
        extra_size: trailing columns after the observation (e.g. a memory read fed back), encoded as
            a vector part.

    Input `[..., sum(part sizes) + extra_size]`, any leading dimensions.
    """

    def __init__(
        self,
        parts: tuple[ObservationPart, ...],
        output_size: int,
        image_encoder: str = "auto",
        image_features: int = 256,
        extra_size: int = 0,
    ):
        super().__init__()
        if image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f"image_encoder must be one of {IMAGE_ENCODERS}, got {image_encoder!r}")
        self.slices: list[tuple[int, int, str]] = []  # (start, stop, encoder key or "" for raw)
        self.parts = nn.ModuleDict()
        start, features = 0, 0
        for i, part in enumerate(parts):
            stop = start + part.size
            key = f"part{i}"
            if part.kind == "image":
                self.parts[key] = ImageEncoder(part, image_features, image_encoder)
            elif part.kind == "discrete":
                self.parts[key] = DiscreteEmbedding(part.sizes)
            if part.kind != "action_mask":
                self.slices.append((start, stop, key if key in self.parts else ""))
                features += self.parts[key].output_size if key in self.parts else part.size
            start = stop
        if extra_size:
            self.slices.append((start, start + extra_size, ""))
            features += extra_size
        self.input_size = start + extra_size
        self.project = FlatEncoder(features, output_size)
        self.output_size = output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = []
        for start, stop, key in self.slices:
            column = x[..., start:stop]
            pieces.append(self.parts[key](column) if key else column)
        return self.project(torch.cat(pieces, dim=-1))


def make_encoder(spec: EnvSpec, output_size: int, encoder: str = "auto", extra_size: int = 0) -> nn.Module:
    """The encoder of `spec`'s observations (`[..., observation_size + extra_size] -> [..., output_size]`).

    Args:
        spec: the env's spec; its `parts` choose the encoder.
        output_size: features out (the controller's input size).
        encoder: `auto` (by the parts, see the module docstring), `flat` (one linear layer over every
            column, masks left out), or `grid` / `small` / `nature` to force the CNN of image parts.
        extra_size: trailing columns after the observation (a memory read fed back).
    """
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    parts = spec.parts
    plain = all(p.kind == "vector" for p in parts)
    if encoder == "flat" or (encoder == "auto" and plain):
        if plain:
            return FlatEncoder(spec.observation_size + extra_size, output_size)
        flat_parts = tuple(
            p if p.kind == "action_mask" else ObservationPart(p.name, "vector", (p.size,)) for p in parts
        )
        return ObservationEncoder(flat_parts, output_size, extra_size=extra_size)
    if encoder != "auto" and not any(p.kind == "image" for p in parts):
        raise ValueError(f"encoder {encoder!r} is a CNN, but the observation has no image part: {parts}")
    return ObservationEncoder(parts, output_size, "auto" if encoder == "auto" else encoder, extra_size=extra_size)


def action_mask(obs: torch.Tensor, spec: EnvSpec) -> torch.Tensor | None:
    """The `action_mask` part of observations `[..., D]` as bool `[..., head_size]` (True = allowed), or `None`."""
    start = 0
    for part in spec.parts:
        if part.kind == "action_mask":
            return obs[..., start : start + part.size] > 0.5
        start += part.size
    return None
