"""Observation encoders chosen by the observation space: CNNs for images, embeddings for discrete
values, the raw columns for vectors, per part for Dict / Tuple observations (plain PyTorch)."""

from lightning_memrl.encoders.cnn import IMAGE_ENCODERS, ImageEncoder, cnn_for, orthogonal_
from lightning_memrl.encoders.observation import (
    ENCODERS,
    DiscreteEmbedding,
    FlatEncoder,
    ObservationEncoder,
    action_mask,
    make_encoder,
)

__all__ = [
    "ENCODERS",
    "IMAGE_ENCODERS",
    "DiscreteEmbedding",
    "FlatEncoder",
    "ImageEncoder",
    "ObservationEncoder",
    "action_mask",
    "cnn_for",
    "make_encoder",
    "orthogonal_",
]
