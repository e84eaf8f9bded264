"""Mamba-2 (SSD) controller: a pure-PyTorch block with exact in-sequence resets, and an optional fused scan.

One block (Dao & Gu, 2024): `in_proj` to `z, x, B, C, dt`; a short causal depthwise convolution
over `[x, B, C]` with SiLU; the SSD scan with a scalar decay per head `A = -exp(A_log)`; the `D`
skip; a gated RMSNorm `norm(y * silu(z))`; `out_proj`. Parameter names and shapes follow
mamba_ssm's `Mamba2` (one group), so one state_dict serves both backends.

A reset at step t zeroes both parts of the state before step t: the convolution window is masked
so no input from before the reset reaches step t or later, and the SSM decay at t is zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from lightning_memrl.controllers.base import Controller
from lightning_memrl.controllers.stack import ResidualStack
from lightning_memrl.errors import ConfigError, MissingDependencyError
from lightning_memrl.ops.causal_conv import depthwise_causal_conv
from lightning_memrl.ops.kernel_choice import KernelChoice, choose_kernel, warn_once
from lightning_memrl.ops.rms_norm import rms_norm
from lightning_memrl.ops.segment_conv import fused_segment_causal_conv_silu
from lightning_memrl.ops.ssd import ssd_chunked_scan
from lightning_memrl.ops.ssd_mamba_ssm import gated_rms_norm_mamba_ssm, mamba_ssm_available, ssd_mamba_ssm
from lightning_memrl.state import State

BACKENDS = ("auto", "torch", "mamba_ssm")

Mamba2State = tuple[torch.Tensor, torch.Tensor]  # (conv [B, conv_dim, d_conv-1], ssm [B, heads, head_dim, d_state])
SequenceFn = Callable[[torch.Tensor, State, torch.Tensor], tuple[torch.Tensor, State]]


def run_in_row_blocks(
    fn: SequenceFn, x: torch.Tensor, state: State, reset: torch.Tensor, block_tokens: int
) -> tuple[torch.Tensor, State]:
    """`fn(x, state, reset)` over blocks of batch rows on CPU, each about `block_tokens` tokens.

    Rows are independent, so the result equals `fn` on the whole batch. On CPU every op of the Mamba-2
    block is memory-bound: blocks whose tensors stay in cache run the forward and backward passes
    much faster than the whole batch. The blocks are `split` views, whose backward concatenates the
    blocks' gradients (slicing would zero-fill a whole-batch gradient per block).
    """
    rows = max(1, block_tokens // x.shape[1])
    if x.device.type != "cpu" or x.shape[0] <= rows:
        return fn(x, state, reset)
    leaves, spec = tree_flatten(state)
    leaf_blocks = [leaf.split(rows) for leaf in leaves]
    parts = [
        fn(xb, tree_unflatten([blocks[i] for blocks in leaf_blocks], spec), rb)
        for i, (xb, rb) in enumerate(zip(x.split(rows), reset.split(rows), strict=True))
    ]
    y = torch.cat([p[0] for p in parts])
    ends = [tree_flatten(p[1])[0] for p in parts]
    return y, tree_unflatten([torch.cat(group) for group in zip(*ends, strict=True)], spec)


class Mamba2Block(Controller):
    """One Mamba-2 mixer of width `d_model` (input and output), with its own state.

    State: `(conv_state [B, d_inner + 2 d_state, d_conv - 1], ssm_state [B, heads, head_dim, d_state])`.

    Args:
        d_model: input and output width.
        d_state: SSM state size N.
        d_conv: convolution width.
        expand: `d_inner = expand * d_model`.
        head_dim: channels per head (`d_inner` must be a multiple).
        chunk_size: chunk length of the SSD scan in `forward_sequence`; `None` picks per backend
            (32 for the torch scan, the fastest measured on CPU; 256 for mamba_ssm, its own default).
        backend: `auto` (mamba_ssm's Triton scan on CUDA when importable, else torch), `torch` or `mamba_ssm`.
        dt_min: smallest initial step size (dt is initialised log-uniform in `[dt_min, dt_max]`).
        dt_max: largest initial step size.
        A_init_range: range of the initial decay rates `-A`; small rates and small dt remember longer.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        head_dim: int = 32,
        chunk_size: int | None = None,
        backend: str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        A_init_range: tuple[float, float] = (1.0, 16.0),
    ):
        super().__init__()
        d_inner = expand * d_model
        if d_inner % head_dim:
            raise ConfigError(f"expand * d_model ({d_inner}) must be a multiple of head_dim ({head_dim})")
        if backend not in BACKENDS:
            raise ConfigError(f"unknown Mamba2 backend {backend!r}; choose one of {BACKENDS}")
        if (chunk_size is not None and chunk_size < 1) or d_conv < 1:
            raise ConfigError(f"chunk_size and d_conv must be >= 1, got {chunk_size} and {d_conv}")
        if not 0 < dt_min <= dt_max:
            raise ConfigError(f"need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        self.input_size = self.output_size = d_model
        self.d_inner, self.d_state, self.d_conv = d_inner, d_state, d_conv
        self.head_dim, self.num_heads = head_dim, d_inner // head_dim
        self.chunk_size, self.backend = chunk_size, backend
        self.cpu_block_tokens = 4096  # rows per block on CPU: cpu_block_tokens // T
        self.conv_dim = d_inner + 2 * d_state
        self.in_proj = nn.Linear(d_model, 2 * d_inner + 2 * d_state + self.num_heads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim, padding=d_conv - 1)
        # dt = softplus(dt_raw + dt_bias); the bias starts at softplus^-1 of a log-uniform dt.
        dt = torch.exp(torch.rand(self.num_heads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        A = torch.empty(self.num_heads).uniform_(*A_init_range)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(self.num_heads))
        self.norm = nn.RMSNorm(d_inner, eps=1e-5)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Mamba2State:
        conv = torch.zeros(batch_size, self.conv_dim, self.d_conv - 1, device=device)
        ssm = torch.zeros(batch_size, self.num_heads, self.head_dim, self.d_state, device=device)
        return conv, ssm

    def _scan_choice(self, x: torch.Tensor) -> KernelChoice:
        """mamba_ssm's fused path or the torch path; `backend='mamba_ssm'` where it cannot run is an error,
        `auto` falls back to torch (with a warning on CUDA, where mamba_ssm is the default)."""
        if self.backend == "mamba_ssm":
            if not x.is_cuda:
                raise ConfigError("Mamba2 backend='mamba_ssm' runs on CUDA only; use backend='auto' or 'torch'")
            if not mamba_ssm_available():
                raise MissingDependencyError(
                    "Mamba2 backend='mamba_ssm' needs mamba-ssm, triton and einops: "
                    "pip install 'lightning-memrl[gpu]', or use backend='auto'"
                )
        blockers = [] if x.is_cuda else [f"the inputs are on {x.device.type}"]
        blockers += [] if mamba_ssm_available() else ["mamba-ssm, triton or einops is not installed"]
        requested = {"auto": None, "torch": False, "mamba_ssm": True}[self.backend]
        return choose_kernel(
            "Mamba2 backend='auto'", requested, blockers, fused_name="mamba_ssm", fallback_name="torch",
            expected=x.is_cuda,
        )  # fmt: skip

    def _split(self, zxbcdt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch.split(zxbcdt, [self.d_inner, self.conv_dim, self.num_heads], dim=-1)

    def _output(self, y: torch.Tensor, z: torch.Tensor, fused: bool = False) -> torch.Tensor:
        # Gated RMSNorm (mamba_ssm's norm_before_gate=False): normalise y * silu(z), then project.
        normed = gated_rms_norm_mamba_ssm(y, z, self.norm.weight, self.norm.eps) if fused else None
        if fused and normed is None:
            self.sequence_kernel = f"{self.sequence_kernel} scan, torch gated norm (mamba_ssm's is not importable)"
            warn_once("Mamba2: mamba_ssm's gated RMSNorm kernel is not importable; the torch norm runs instead")
        if normed is None:
            normed = rms_norm(y, self.norm.weight, self.norm.eps, gate=z)
        return self.out_proj(normed)

    def forward_step(
        self, x: torch.Tensor, state: Mamba2State, reset: torch.Tensor
    ) -> tuple[torch.Tensor, Mamba2State]:
        keep = (~reset).to(x.dtype)
        conv_state = state[0] * keep[:, None, None]
        ssm_state = state[1] * keep[:, None, None, None]
        z, xbc, dt_raw = self._split(self.in_proj(x))
        window = torch.cat([conv_state, xbc.unsqueeze(-1)], dim=-1)  # [B, conv_dim, d_conv]
        xbc = F.silu((window * self.conv1d.weight[:, 0]).sum(-1) + self.conv1d.bias)
        xs, Bm, Cm = torch.split(xbc, [self.d_inner, self.d_state, self.d_state], dim=-1)
        xs = xs.view(-1, self.num_heads, self.head_dim)
        dt = F.softplus(dt_raw + self.dt_bias)  # [B, heads]
        A = -torch.exp(self.A_log.float())  # float32: exp of a learned log-rate, kept out of low precision
        decay = torch.exp(dt * A)
        ssm_state = ssm_state * decay[..., None, None] + (xs * dt[..., None]).unsqueeze(-1) * Bm[:, None, None, :]
        y = (ssm_state @ Cm[:, None, :, None]).squeeze(-1) + self.D[:, None] * xs  # [B, heads, head_dim]
        return self._output(y.reshape(-1, self.d_inner), z), (window[..., 1:], ssm_state)

    def _masked_conv(
        self, xbc: torch.Tensor, conv_state: torch.Tensor, seg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal depthwise conv that never mixes inputs of different segments.

        `xbc [B, T, conv_dim]`, `conv_state [B, conv_dim, K-1]` (segment 0), `seg [B, T]` ->
        `(out [B, T, conv_dim], conv_state after step T-1)`.

        The plain convolution runs as one native op; the few terms that reach across a reset (window
        positions `k < K-1` of the steps just after one) are gathered and subtracted, instead of masking
        every term densely (which cost more than the SSD scan on CPU).
        """
        K, T = self.d_conv, xbc.shape[1]
        padded = torch.cat([conv_state.transpose(1, 2), xbc], dim=1)  # [B, K-1+T, C]; step t sees t..t+K-1
        weight = self.conv1d.weight  # [C, 1, K]
        out = depthwise_causal_conv(padded, weight, self.conv1d.bias)  # [B, T, C]
        seg_padded = torch.cat([seg.new_zeros(seg.shape[0], K - 1), seg], dim=1)  # [B, K-1+T]
        crossing = seg_padded.unfold(1, K, 1)[..., : K - 1] != seg[..., None]  # [B, T, K-1]
        b_idx, t_idx, k_idx = crossing.nonzero(as_tuple=True)
        if b_idx.numel():
            leaked = padded[b_idx, t_idx + k_idx] * weight[:, 0, k_idx].t()  # [n, C]
            out.index_put_((b_idx, t_idx), -leaked, accumulate=True)
        tail_same = (seg_padded[:, T:] == seg[:, -1:]).to(xbc.dtype)  # last K-1 inputs still in the episode
        return out, (padded[:, T:] * tail_same[..., None]).transpose(1, 2)

    def forward_sequence(
        self, x: torch.Tensor, state: Mamba2State, reset: torch.Tensor
    ) -> tuple[torch.Tensor, Mamba2State]:
        return run_in_row_blocks(self._forward_rows, x, state, reset, self.cpu_block_tokens)

    def _forward_rows(
        self, x: torch.Tensor, state: Mamba2State, reset: torch.Tensor
    ) -> tuple[torch.Tensor, Mamba2State]:
        b, T, _ = x.shape
        seg = reset.to(torch.int64).cumsum(dim=1)  # segment ids; the carried state is segment 0
        choice = self._scan_choice(x)
        self.sequence_kernel, fused = str(choice), choice.fused
        z, xbc, dt_raw = self._split(self.in_proj(x))
        if fused:  # the GPU path: convolution, mask and SiLU in one compiled kernel, no host sync
            xbc, conv_state = fused_segment_causal_conv_silu(xbc, state[0], seg, self.conv1d.weight, self.conv1d.bias)
        else:
            xbc, conv_state = self._masked_conv(xbc, state[0], seg)
            xbc = F.silu(xbc)
        xs, Bm, Cm = torch.split(xbc, [self.d_inner, self.d_state, self.d_state], dim=-1)
        xs = xs.reshape(b, T, self.num_heads, self.head_dim)
        A = -torch.exp(self.A_log.float())
        if fused:
            chunk = self.chunk_size or 256
            y, ssm_state = ssd_mamba_ssm(xs, dt_raw, self.dt_bias, A, Bm, Cm, self.D, reset, state[1], chunk)
        else:
            dt = F.softplus(dt_raw + self.dt_bias)
            y, ssm_state = ssd_chunked_scan(xs, dt, A, Bm, Cm, reset, state[1], self.chunk_size or 32)
            y = torch.addcmul(y, xs, self.D[:, None])
        return self._output(y.reshape(b, T, self.d_inner), z, fused), (conv_state, ssm_state)


class Mamba2(ResidualStack):
    """A stack of Mamba-2 blocks (pre-norm residual), the SSM controller.

    The state is a tuple with one `(conv_state, ssm_state)` pair per layer (see `Mamba2Block`).
    `--model.controller.class_path lightning_memrl.controllers.Mamba2`.

    Args:
        hidden_size: model width and output size.
        input_size: size of the inputs; defaults to `hidden_size` (else a linear input projection).
        num_layers: number of Mamba-2 blocks.
        d_state: SSM state size per head.
        d_conv: convolution width.
        expand: inner width as a multiple of `hidden_size`.
        head_dim: channels per head.
        chunk_size: SSD chunk length for `forward_sequence` (`None`: per backend, see `Mamba2Block`).
        backend: `auto`, `torch` or `mamba_ssm` (see `Mamba2Block`).
        dt_min: smallest initial step size.
        dt_max: largest initial step size.
        A_init_range: range of the initial decay rates.
        mlp_ratio: per-layer MLP width as a multiple of `hidden_size` (0: none, as in Mamba-2).
    """

    def __init__(
        self,
        hidden_size: int = 128,
        input_size: int | None = None,
        num_layers: int = 1,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        head_dim: int = 32,
        chunk_size: int | None = None,
        backend: str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        A_init_range: tuple[float, float] = (1.0, 16.0),
        mlp_ratio: float = 0.0,
    ):
        blocks = [
            Mamba2Block(
                hidden_size, d_state, d_conv, expand, head_dim, chunk_size, backend, dt_min, dt_max, A_init_range
            )
            for _ in range(num_layers)
        ]
        super().__init__(blocks, hidden_size, input_size, mlp_ratio)
        self.cpu_block_tokens = 4096  # rows per block on CPU: cpu_block_tokens // T (see run_in_row_blocks)

    def forward_sequence(
        self, x: torch.Tensor, state: tuple[Mamba2State, ...], reset: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[Mamba2State, ...]]:
        # The whole stack per row block: its norms and residuals stay in cache too.
        return run_in_row_blocks(super().forward_sequence, x, state, reset, self.cpu_block_tokens)
