"""The fast tier of Dual-Tier Miras: a linear associative memory trained by one SGD step per step.

With `S [Dk, Dv]` (read `o = q S`), one SGD step of size `beta` on `1/2 ||k S - v||^2` is the delta
rule `S <- S + beta k^T (v - k S)`. Written as `S_t = S_0 + sum_{i<=t} k_i^T u_i`, the pseudo-values
`u_t = beta_t (v_t - k_t S_0 - sum_{i<t} (k_t . k_i) u_i)` solve one unit-lower-triangular system per
chunk, so a chunk of C steps costs a few matrix products and a triangular solve instead of C steps.
Resets inside a chunk: steps of different episodes do not interact (block mask), and `S_0` only
reaches the steps before the first reset. `delta_rule_step` is the reference the chunked form is
tested against.
"""

from __future__ import annotations

import torch


def delta_rule_step(
    state: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step, read before write.

    Args:
        state: `S [B, Dk, Dv]`.
        q: `[B, Dk]` read query.
        k: `[B, Dk]` write key (unit norm keeps the update contractive for beta in [0, 1]).
        v: `[B, Dv]` write value.
        beta: `[B]` step size.

    Returns:
        `(read [B, Dv], prediction k S before the update [B, Dv], next S)`.
    """
    read = torch.einsum("bk,bkv->bv", q, state)
    prediction = torch.einsum("bk,bkv->bv", k, state)
    update = beta[:, None, None] * k.unsqueeze(-1) * (v - prediction).unsqueeze(1)
    return read, prediction, state + update


def delta_rule_chunked(
    state: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    reset: torch.Tensor,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The delta rule over a sequence, chunk by chunk; equal to `delta_rule_step` T times.

    Args:
        state: `S_0 [B, Dk, Dv]`.
        q: `[B, T, Dk]`; k: `[B, T, Dk]`; v: `[B, T, Dv]`; beta: `[B, T]`.
        reset: `[B, T]` bool, `S` is zeroed before step t where true.
        chunk_size: steps solved together (memory `O(B C^2)`).

    Returns:
        `(reads [B, T, Dv], predictions [B, T, Dv], S after the last step)`.
    """
    reads, predictions = [], []
    for start in range(0, q.shape[1], chunk_size):
        end = min(start + chunk_size, q.shape[1])
        qc, kc, vc, bc, rc = q[:, start:end], k[:, start:end], v[:, start:end], beta[:, start:end], reset[:, start:end]
        size = end - start
        # 1. episodes inside the chunk: who may interact with whom, who still sees S_0.
        episode = rc.long().cumsum(1)  # [B, C]
        carried = (episode == 0).to(q.dtype).unsqueeze(-1)  # [B, C, 1]
        earlier = torch.ones(size, size, dtype=torch.bool, device=q.device).tril(-1)
        mask = ((episode[:, :, None] == episode[:, None, :]) & earlier).to(q.dtype)  # [B, C, C]
        # 2. pseudo-values: (I + diag(beta) tril(K K^T)) U = diag(beta) (V - K S_0).
        kk = (kc @ kc.transpose(1, 2)) * mask
        k_state = carried * (kc @ state)
        system = torch.eye(size, dtype=q.dtype, device=q.device) + bc.unsqueeze(-1) * kk
        u = torch.linalg.solve_triangular(system, bc.unsqueeze(-1) * (vc - k_state), upper=False, unitriangular=True)
        # 3. reads before each write, the inner-loss predictions, and the state after the chunk.
        reads.append(carried * (qc @ state) + ((qc @ kc.transpose(1, 2)) * mask) @ u)
        predictions.append(k_state + kk @ u)
        in_last = (episode == episode[:, -1:]).to(q.dtype).unsqueeze(-1)
        keep = (episode[:, -1] == 0).to(q.dtype)[:, None, None]
        state = keep * state + (kc * in_last).transpose(1, 2) @ u
    return torch.cat(reads, 1), torch.cat(predictions, 1), state
