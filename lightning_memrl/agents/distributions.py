"""Action distributions and the policy head that makes them, one per kind of action space.

Each distribution samples with an explicit `torch.Generator` (acting must not touch the global RNG,
so collection is reproducible), and gives `log_prob`, `entropy` and `mode` (the greedy action).
Leading dimensions are free: `[N]` when acting, `[S, L]` when training.

| action kind      | distribution         | action tensor             |
|------------------|----------------------|---------------------------|
| `discrete`       | `Categorical`        | `[...]` long              |
| `multi_discrete` | `FactoredCategorical`| `[..., M]` long           |
| `multi_binary`   | `Bernoulli`          | `[..., n]` float (0 / 1)  |
| `box`            | `DiagGaussian`       | `[..., d]` float, unclipped (the env adapter clips to the bounds) |
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_memrl.specs import EnvSpec

_LOG_2PI = math.log(2 * math.pi)


MASKED_LOGIT = -1e8  # a masked action's logit (sb3-contrib MaskablePPO's value): probability exactly 0


def masked_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """`logits [..., K]` with the entries where `mask [..., K]` is false set to `MASKED_LOGIT`.

    A row that allows no action is left unmasked (uniform over its logits) rather than undefined.
    """
    if mask is None:
        return logits
    mask = mask | ~mask.any(-1, keepdim=True)
    return logits.float().masked_fill(~mask, MASKED_LOGIT)


class Categorical:
    """One choice among `K` actions from `logits [..., K]`; `mask [..., K]` (True = allowed) removes actions."""

    def __init__(self, logits: torch.Tensor, mask: torch.Tensor | None = None):
        self.log_probs = masked_logits(logits.float(), mask).log_softmax(-1)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Gumbel-max sample `[...]` (long)."""
        uniform = torch.rand(self.log_probs.shape, device=self.log_probs.device, generator=generator)
        return (self.log_probs - (-uniform.clamp_min(1e-20).log()).log()).argmax(-1)

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return self.log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.log_probs.exp() * self.log_probs).sum(-1)  # a masked action adds 0 * -1e8 = 0

    def mode(self) -> torch.Tensor:
        return self.log_probs.argmax(-1)


class FactoredCategorical:
    """Independent categoricals, component `i` over `sizes[i]` actions, from `logits [..., sum(sizes)]`;
    `mask [..., sum(sizes)]` masks each component's actions."""

    def __init__(self, logits: torch.Tensor, sizes: tuple[int, ...], mask: torch.Tensor | None = None):
        masks = [None] * len(sizes) if mask is None else mask.split(list(sizes), dim=-1)
        self.parts = [Categorical(c, m) for c, m in zip(logits.split(list(sizes), dim=-1), masks, strict=True)]

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """`[..., M]` long."""
        return torch.stack([part.sample(generator) for part in self.parts], dim=-1)

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return sum(part.log_prob(action[..., i]) for i, part in enumerate(self.parts))

    def entropy(self) -> torch.Tensor:
        return sum(part.entropy() for part in self.parts)

    def mode(self) -> torch.Tensor:
        return torch.stack([part.mode() for part in self.parts], dim=-1)


class Bernoulli:
    """Independent 0/1 actions from `logits [..., n]`."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits.float()

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """`[..., n]` float of 0 / 1."""
        uniform = torch.rand(self.logits.shape, device=self.logits.device, generator=generator)
        return (uniform < torch.sigmoid(self.logits)).float()

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        # log p(a) = a * logsigmoid(x) + (1 - a) * logsigmoid(-x), summed over components
        a = action.float()
        return (a * nn.functional.logsigmoid(self.logits) + (1 - a) * nn.functional.logsigmoid(-self.logits)).sum(-1)

    def entropy(self) -> torch.Tensor:
        p = torch.sigmoid(self.logits)
        return (-(p * nn.functional.logsigmoid(self.logits) + (1 - p) * nn.functional.logsigmoid(-self.logits))).sum(-1)

    def mode(self) -> torch.Tensor:
        return (self.logits > 0).float()


class DiagGaussian:
    """Independent Gaussians with means `mean [..., d]` and state-independent `log_std [d]`."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor):
        self.mean = mean.float()
        self.log_std = log_std.float().expand_as(self.mean)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """`[..., d]` float, not clipped (the log-prob stays that of the sampled value)."""
        noise = torch.randn(self.mean.shape, device=self.mean.device, generator=generator)
        return self.mean + self.log_std.exp() * noise

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        z = (action.float() - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - 0.5 * _LOG_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (self.log_std + 0.5 * (1.0 + _LOG_2PI)).sum(-1)

    def mode(self) -> torch.Tensor:
        return self.mean


ActionDistribution = Categorical | FactoredCategorical | Bernoulli | DiagGaussian


class ActionHead(nn.Linear):
    """The policy head: a linear map from features to the distribution parameters of `spec`'s actions.

    It is an `nn.Linear` (`weight`, `bias`: the checkpoint keys of the discrete head stay the same)
    plus, for `box` actions, a learned state-independent `log_std [d]`.

    Args:
        in_features: features the head reads (`[..., in_features]`).
        spec: the env's action space.
        init_gain: orthogonal init gain of the weight (small: a near-uniform / centred first policy).
        log_std_init: initial log standard deviation of `box` actions.
    """

    def __init__(self, in_features: int, spec: EnvSpec, init_gain: float = 0.01, log_std_init: float = 0.0):
        super().__init__(in_features, spec.head_size)
        self.kind = spec.action_kind
        self.sizes = spec.sizes
        nn.init.orthogonal_(self.weight, init_gain)
        nn.init.zeros_(self.bias)
        if self.kind == "box":
            self.log_std = nn.Parameter(torch.full((spec.sizes[0],), float(log_std_init)))

    def masked(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The head's output `[..., head_size]` with each component's masked logits set to `MASKED_LOGIT`."""
        out = self(features)
        if mask is None:
            return out
        sizes = list(self.sizes)
        return torch.cat(
            [masked_logits(o, m) for o, m in zip(out.split(sizes, -1), mask.split(sizes, -1), strict=True)], -1
        )

    def distribution(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> ActionDistribution:
        """The action distribution for `features [..., in_features]`.

        `mask [..., head_size]` (bool, True = allowed; discrete and multi-discrete actions) gives the
        masked actions probability 0 (MaskablePPO convention).
        """
        out = self(features)
        if self.kind == "discrete":
            return Categorical(out, mask)
        if self.kind == "multi_discrete":
            return FactoredCategorical(out, self.sizes, mask)
        if self.kind == "multi_binary":
            return Bernoulli(out)
        return DiagGaussian(out, self.log_std)
