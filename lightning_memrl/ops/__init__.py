"""Fused or hand-differentiated kernels, each beside its pure-PyTorch reference."""

from lightning_memrl.ops.gru_scan import gru_scan, gru_scan_reference

__all__ = ["gru_scan", "gru_scan_reference"]
