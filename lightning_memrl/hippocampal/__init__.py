"""Hippocampal replay: episodes, a momentum dual encoder, an episode store, consolidation, mixed sampling."""

from lightning_memrl.hippocampal.consolidator import Consolidator, reward_aware_infonce
from lightning_memrl.hippocampal.encoder import DualEncoder, SequenceEncoder
from lightning_memrl.hippocampal.episode import Episode, windows
from lightning_memrl.hippocampal.replay import HippocampalReplayBuffer
from lightning_memrl.hippocampal.store import MemoryStore

__all__ = [
    "Consolidator",
    "DualEncoder",
    "Episode",
    "HippocampalReplayBuffer",
    "MemoryStore",
    "SequenceEncoder",
    "reward_aware_infonce",
    "windows",
]
