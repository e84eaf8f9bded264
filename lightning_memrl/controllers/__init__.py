"""Sequence controllers sharing one contract (see `controllers.base.Controller`)."""

from lightning_memrl.controllers.attention import CausalSelfAttention, Transformer
from lightning_memrl.controllers.base import Controller
from lightning_memrl.controllers.gru import GRU
from lightning_memrl.controllers.hybrid import CyborgFusion, CyborgHybrid, HybridMambaAttention
from lightning_memrl.controllers.lstm import LSTM
from lightning_memrl.controllers.mamba2 import Mamba2, Mamba2Block
from lightning_memrl.controllers.pseudo_mamba import PseudoMamba
from lightning_memrl.controllers.stack import ResidualStack

__all__ = [
    "GRU",
    "LSTM",
    "CausalSelfAttention",
    "Controller",
    "CyborgFusion",
    "CyborgHybrid",
    "HybridMambaAttention",
    "Mamba2",
    "Mamba2Block",
    "PseudoMamba",
    "ResidualStack",
    "Transformer",
]
