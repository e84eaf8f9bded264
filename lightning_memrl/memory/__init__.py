"""External memories sharing one contract (see `memory.base.Memory`)."""

from lightning_memrl.memory.base import Memory
from lightning_memrl.memory.episode_clock import EpisodeClock
from lightning_memrl.memory.episodic import EpisodicMemory
from lightning_memrl.memory.kv import KVMemory
from lightning_memrl.memory.miras import DualTierMiras
from lightning_memrl.memory.parallel import ParallelMemory
from lightning_memrl.memory.pmm import PMM
from lightning_memrl.memory.pseudo_mode import PseudoModeMemory
from lightning_memrl.memory.ring import RingMemory
from lightning_memrl.memory.slot import SlotMemory
from lightning_memrl.memory.vector_store import VectorStore

__all__ = [
    "PMM",
    "DualTierMiras",
    "EpisodeClock",
    "EpisodicMemory",
    "KVMemory",
    "Memory",
    "ParallelMemory",
    "PseudoModeMemory",
    "RingMemory",
    "SlotMemory",
    "VectorStore",
]
