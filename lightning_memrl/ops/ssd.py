"""The Mamba-2 SSD scan with in-sequence resets: a chunked pure-PyTorch scan and its sequential reference.

The recurrence, per batch row b and head h (state `S [P, N]`):

    S_t = keep_t * exp(dt_t * A) * S_{t-1} + dt_t * x_t B_t^T        y_t = S_t C_t

where `keep_t = 0` at an episode start (`reset[b, t]`), so no information crosses the boundary.

`ssd_chunked_scan` computes it with the SSD decomposition (Dao & Gu, 2024): matrix products
inside chunks of `chunk_size` steps, a short recurrence between chunks. Resets enter as
*segment ids* `seg = cumsum(reset)`: position j influences position i only when both lie in
the same segment (the mask mamba_ssm's `seq_idx` applies), and the carried state belongs to
segment 0. `ssd_sequential_reference` is the step-by-step loop it is tested against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ssd_sequential_reference(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    reset: torch.Tensor,
    initial_state: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step-by-step SSD recurrence (the reference; slow).

    Args:
        x: `[batch, T, heads, head_dim]` inputs.
        dt: `[batch, T, heads]` positive step sizes (after softplus).
        A: `[heads]` negative decay rates.
        B: `[batch, T, d_state]` input projections (one group shared by all heads).
        C: `[batch, T, d_state]` output projections.
        reset: `[batch, T]` bool, true where the state is zeroed before step t.
        initial_state: `[batch, heads, head_dim, d_state]` state before step 0.

    Returns:
        `(y [batch, T, heads, head_dim], final state [batch, heads, head_dim, d_state])`.
    """
    state = initial_state
    keep = (~reset).to(x.dtype)
    ys = []
    for t in range(x.shape[1]):
        decay = torch.exp(dt[:, t] * A) * keep[:, t, None]  # [b, h]
        inject = (x[:, t] * dt[:, t, :, None])[..., None] * B[:, t, None, None, :]  # [b, h, p, n]
        state = state * decay[..., None, None] + inject
        ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1), state


def ssd_chunked_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    reset: torch.Tensor,
    initial_state: torch.Tensor,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked SSD scan with exact resets; same arguments and results as `ssd_sequential_reference`.

    Cost: `O(T * chunk_size)` for the intra-chunk products plus `T / chunk_size` state updates.
    """
    b, T, h, p = x.shape
    n = B.shape[-1]
    L = chunk_size
    # 0. Segment ids (0 = the carried state's episode) and padding to whole chunks. Padded steps have
    #    dt = 0: decay 1 and no input, so the final state is unchanged by them.
    seg = reset.to(torch.int64).cumsum(dim=1)  # [b, T]
    pad = (-T) % L
    a = dt * A  # [b, T, h] log decay of each step (<= 0)
    xdt = x * dt[..., None]  # [b, T, h, p]
    if pad:
        xdt = F.pad(xdt, (0, 0, 0, 0, 0, pad))
        a = F.pad(a, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, pad))
        seg = torch.cat([seg, seg[:, -1:].expand(b, pad)], dim=1)
    nc = (T + pad) // L

    # 1. Split into chunks, keeping the token layout `[.., L, heads, head_dim]`: the products with the
    #    shared B and C then run as one matmul over all heads (`h * p` columns), which on CPU is several
    #    times faster than a batch of per-head `L x p` products. Only the intra-chunk product needs the
    #    heads in front.
    xdt = xdt.view(b, nc, L, h, p)
    a = a.view(b, nc, L, h)
    Bc = B.reshape(b * nc, L, n)
    Cc = C.reshape(b * nc, L, n)
    segc = seg.view(b, nc, L)
    a_cum = a.cumsum(dim=2)  # [b, c, L, h] log decay from the chunk start through step l

    # 2. Within chunks: y_i += sum_{j <= i, same segment} C_i.B_j exp(a_cum_i - a_cum_j) dt_j x_j.
    causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
    allowed = (segc[..., :, None] == segc[..., None, :]) & causal  # [b, c, L, L]
    a_cum_h = a_cum.transpose(-1, -2)  # [b, c, h, L]
    log_decay = (a_cum_h[..., :, None] - a_cum_h[..., None, :]).masked_fill(~allowed[:, :, None], float("-inf"))
    CB = torch.bmm(Cc, Bc.transpose(1, 2)).view(b, nc, 1, L, L)
    scores = CB * torch.exp(log_decay)  # [b, c, h, L, L]
    y_intra = scores @ xdt.transpose(2, 3)  # [b, c, h, L, p]

    # 3. State each chunk builds from its own inputs, at its end (only inputs of its last segment).
    end_seg = segc[..., -1:]  # [b, c, 1]
    to_end = torch.exp(a_cum[:, :, -1:] - a_cum) * (segc == end_seg)[..., None]  # [b, c, L, h]
    local = (xdt * to_end[..., None]).view(b * nc, L, h * p).transpose(1, 2) @ Bc  # [b*c, h*p, n]

    # 4. Pass states across chunks in closed form (one matmul, no loop over chunks). With G_k the log
    #    decay of chunks 0..k-1, chunk d's local state reaches the start of chunk c > d scaled by
    #    exp(G_c - G_{d+1}), and the initial state by exp(G_c), if no reset lies in between: that is,
    #    if the segment at d's end (0 for the initial state) is the segment entering c. Row c = nc is
    #    the final state.
    prev_seg = torch.cat([segc.new_zeros(b, 1), end_seg[..., 0]], dim=1)  # [b, c+1] segment entering c
    G = F.pad(a_cum[:, :, -1].transpose(1, 2).cumsum(dim=-1), (1, 0))  # [b, h, c+1]
    source_seg = prev_seg  # source 0 = the initial state, source d+1 = chunk d's local state
    reach = (source_seg[:, None, None, :] == prev_seg[:, None, :, None]) & torch.ones(
        nc + 1, nc + 1, dtype=torch.bool, device=x.device
    ).tril()  # [b, 1, c+1 (to), c+1 (from)]
    log_pass = (G[..., :, None] - G[..., None, :]).masked_fill(~reach, float("-inf"))  # [b, h, c+1, c+1]
    local = local.view(b, nc, h, p * n).transpose(1, 2)  # [b, h, c, p*n]
    sources = torch.cat([initial_state.reshape(b, h, 1, p * n), local], dim=2)  # [b, h, c+1, p*n]
    passed = torch.exp(log_pass) @ sources  # [b, h, c+1, p*n]
    state = passed[:, :, -1].view(b, h, p, n)
    entering = passed[:, :, :-1].view(b, h, nc, p, n).permute(0, 2, 4, 1, 3)  # [b, c, n, h, p]

    # 5. Entering state -> outputs of the steps still in its segment: y_i += exp(a_cum_i) C_i S.
    from_start = torch.exp(a_cum) * (segc == prev_seg[:, :-1, None])[..., None]  # [b, c, L, h]
    y_off = (Cc @ entering.reshape(b * nc, n, h * p)).view(b, nc, L, h, p) * from_start[..., None]
    y = (y_off + y_intra.transpose(2, 3)).view(b, nc * L, h, p)[:, :T]
    return y, state
