"""Sequence controllers sharing one contract (see `controllers.base.Controller`)."""

from lightning_memrl.controllers.base import Controller
from lightning_memrl.controllers.gru import GRU
from lightning_memrl.controllers.lstm import LSTM

__all__ = ["GRU", "LSTM", "Controller"]
