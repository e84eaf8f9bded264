"""Fused or hand-differentiated kernels, each beside its pure-PyTorch reference."""

from lightning_memrl.ops.gru_scan import gru_scan, gru_scan_reference
from lightning_memrl.ops.lstm_scan import lstm_scan, lstm_scan_reference
from lightning_memrl.ops.pseudo_mamba_scan import pseudo_mamba_scan, pseudo_mamba_scan_reference
from lightning_memrl.ops.ssd import ssd_chunked_scan, ssd_sequential_reference
from lightning_memrl.ops.step_attention import step_attention, step_attention_reference

__all__ = [
    "gru_scan",
    "gru_scan_reference",
    "lstm_scan",
    "lstm_scan_reference",
    "pseudo_mamba_scan",
    "pseudo_mamba_scan_reference",
    "ssd_chunked_scan",
    "ssd_sequential_reference",
    "step_attention",
    "step_attention_reference",
]
