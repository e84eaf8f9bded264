"""Adapters to other libraries; each module imports its optional dependency only when imported.

- `lightning_memrl.integrations.sb3`: `SB3ReplayBufferWrapper`, `TerminalSegmenter` (extra `[sb3]`).
- `lightning_memrl.integrations.hub`: `save_pretrained`, `load_pretrained_into`, `load_memory_store` (extra `[hub]`).
"""
