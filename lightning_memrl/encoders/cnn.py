"""Image encoders: a CNN sized to the image, reading the image's columns of a flat observation.

| image (height x width)      | CNN                                                                       |
|-----------------------------|---------------------------------------------------------------------------|
| up to 16 px (MiniGrid 7x7)  | `grid`: three 2x2 convolutions, 16 / 32 / 64 channels, a 2x2 max pool     |
|                             | after the first from 7 px on (rl-starter-files' MiniGrid CNN)             |
| 17 to 35 px                 | `small`: 4x4 stride 2, 3x3 stride 2, 3x3 stride 1; 32 / 64 / 64 channels  |
| 36 px and more (Atari 84)   | `nature`: the DQN Nature CNN, 8x8 s4, 4x4 s2, 3x3 s1; 32 / 64 / 64        |

Each is followed by a linear layer to `output_size` and a ReLU, with orthogonal initialisation
(gain sqrt(2), biases zero). No normalisation layer that depends on the batch: acting on one step
and replaying a sequence give the same features (the stored-state replay is exact).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_memrl.specs import MIN_IMAGE_SIDE, ObservationPart

IMAGE_ENCODERS = ("auto", "grid", "small", "nature")
# (out_channels, kernel, stride) per convolution
_CONVOLUTIONS = {
    "grid": ((16, 2, 1), (32, 2, 1), (64, 2, 1)),
    "small": ((32, 4, 2), (64, 3, 2), (64, 3, 1)),
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
}
_MIN_SIZE = {"grid": MIN_IMAGE_SIDE, "small": 11, "nature": 36}
GRID_POOL_FROM = 7
"""Images at least this wide and high pool after the grid CNN's first convolution (7 -> 6 -> 3 -> 2 -> 1 on
MiniGrid's view): its linear layer reads 64 features instead of 1,024, and the gym agent's update on MemoryS7
runs about 1.45x faster end to end (docs/environments.md, "The grid CNN pools")."""


def orthogonal_(module: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    """Orthogonal weights with `gain` and zero biases, in place; returns the module."""
    nn.init.orthogonal_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def cnn_for(height: int, width: int) -> str:
    """The CNN that `auto` picks for an image of this size (see the module docstring)."""
    if max(height, width) <= 16:
        return "grid"
    return "nature" if min(height, width) >= 36 else "small"


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


class ImageEncoder(nn.Module):
    """One image part of a flat observation -> `[..., output_size]` features.

    Args:
        part: the `image` part (its shape, axes layout and value scale).
        output_size: features out.
        cnn: `auto` (by image size), `grid`, `small` or `nature` (see the module docstring).

    Input `[..., part.size]` (the part's raw values, row-major in the env's layout); any leading
    dimensions (`[N]` acting, `[B, T]` training).
    """

    def __init__(self, part: ObservationPart, output_size: int, cnn: str = "auto"):
        super().__init__()
        if cnn not in IMAGE_ENCODERS:
            raise ValueError(f"image encoder must be one of {IMAGE_ENCODERS}, got {cnn!r}")
        self.part = part
        height, width, channels = part.image_hwc
        self.cnn = cnn_for(height, width) if cnn == "auto" else cnn
        if min(height, width) < _MIN_SIZE[self.cnn]:
            raise ValueError(
                f"the {self.cnn} CNN needs images of at least {_MIN_SIZE[self.cnn]} px, "
                f"{part.name or 'the observation'} is {height}x{width}"
            )
        layers: list[nn.Module] = []
        h, w, c = height, width, channels
        pool = self.cnn == "grid" and min(height, width) >= GRID_POOL_FROM
        for i, (out_channels, kernel, stride) in enumerate(_CONVOLUTIONS[self.cnn]):
            layers += [orthogonal_(nn.Conv2d(c, out_channels, kernel, stride)), nn.ReLU()]
            h, w, c = _conv_out(h, kernel, stride), _conv_out(w, kernel, stride), out_channels
            if pool and i == 0:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(orthogonal_(nn.Linear(c * h * w, output_size)), nn.ReLU())
        self.output_size = output_size
        self.register_buffer("scale", torch.tensor(float(part.scale)), persistent=False)

    def to_nchw(self, x: torch.Tensor) -> torch.Tensor:
        """`[M, part.size]` raw columns -> `[M, C, H, W]` scaled images (stacked frames as channels)."""
        m, layout = x.shape[0], self.part.layout
        img = x.reshape(m, *self.part.shape) * self.scale
        if layout == "hw":
            return img.unsqueeze(1)
        if layout == "hwc":
            return img.permute(0, 3, 1, 2)
        if layout == "shwc":
            img = img.permute(0, 1, 4, 2, 3)
        height, width, channels = self.part.image_hwc
        return img.reshape(m, channels, height, width)  # chw as is; stacked frames merged into channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = self.convs(self.to_nchw(x.reshape(-1, x.shape[-1])))
        return self.head(y.flatten(1)).reshape(*lead, self.output_size)
