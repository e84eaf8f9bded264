"""Hippocampal replay: episodes, a momentum dual encoder, an episode store, consolidation, mixed sampling.

The names hippotorch's README taught (`Episode`, `DualEncoder`, `MemoryStore`, `Consolidator`,
`HippocampalReplayBuffer`, `push_memory_to_hub`, `load_memory_from_hub`) import from here.
"""

from lightning_memrl.hippocampal.consolidator import Consolidator, reward_aware_infonce
from lightning_memrl.hippocampal.encoder import DualEncoder, SequenceEncoder, VectorEncoder
from lightning_memrl.hippocampal.episode import Episode, windows
from lightning_memrl.hippocampal.hub import load_memory_from_hub, push_memory_to_hub
from lightning_memrl.hippocampal.quality import retrieval_quality
from lightning_memrl.hippocampal.replay import HippocampalReplayBuffer
from lightning_memrl.hippocampal.search import top_k_similar
from lightning_memrl.hippocampal.store import MemoryStore

__all__ = [
    "Consolidator",
    "DualEncoder",
    "Episode",
    "HippocampalReplayBuffer",
    "MemoryStore",
    "SequenceEncoder",
    "VectorEncoder",
    "load_memory_from_hub",
    "push_memory_to_hub",
    "retrieval_quality",
    "reward_aware_infonce",
    "top_k_similar",
    "windows",
]
