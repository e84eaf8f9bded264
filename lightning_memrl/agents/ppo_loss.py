"""The clipped PPO objective as a pure function (paper names: ratio, logratio, approx_kl, clipfrac)."""

from __future__ import annotations

import torch


def ppo_loss(
    new_log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    new_value: torch.Tensor,
    old_value: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    *,
    clip_coef: float = 0.2,
    value_clip: float | None = None,
    vf_coef: float = 0.5,
    ent_coef: float = 0.01,
    normalize_advantages: bool = True,
) -> dict[str, torch.Tensor]:
    """Clipped surrogate + value loss - entropy bonus, over samples of any (equal) shape.

    Args:
        new_log_prob: log pi(a|s) under the parameters being trained.
        old_log_prob: log pi(a|s) at acting time.
        advantages: GAE advantages.
        new_value: V(s) under the parameters being trained.
        old_value: V(s) at acting time.
        returns: value targets.
        entropy: policy entropy per sample.
        clip_coef: PPO ratio clip epsilon.
        value_clip: clip of the value change from `old_value` (`None`: unclipped value loss).
        vf_coef: weight of the value loss.
        ent_coef: weight of the entropy bonus.
        normalize_advantages: standardise advantages over these samples first.

    Returns:
        `loss` (to minimise) and detached diagnostics: `policy_loss`, `value_loss`, `entropy`,
        `approx_kl` (the k3 estimator `(ratio - 1) - logratio`), `clip_fraction`.
    """
    if normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    logratio = new_log_prob - old_log_prob
    ratio = logratio.exp()
    policy_loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef)).mean()

    value_error = (new_value - returns) ** 2
    if value_clip is not None:
        clipped_value = old_value + (new_value - old_value).clamp(-value_clip, value_clip)
        value_error = torch.max(value_error, (clipped_value - returns) ** 2)
    value_loss = 0.5 * value_error.mean()

    entropy_mean = entropy.mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy_mean
    with torch.no_grad():
        approx_kl = ((ratio - 1) - logratio).mean()
        clip_fraction = ((ratio - 1).abs() > clip_coef).float().mean()
    return {
        "loss": loss,
        "policy_loss": policy_loss.detach(),
        "value_loss": value_loss.detach(),
        "entropy": entropy_mean.detach(),
        "approx_kl": approx_kl,
        "clip_fraction": clip_fraction,
    }
