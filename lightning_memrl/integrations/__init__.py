"""Adapters to other libraries; each module imports its optional dependency only when imported.

- `lightning_memrl.integrations.sb3`: `SB3ReplayBufferWrapper`, `TerminalSegmenter` (extra `[sb3]`).
- `lightning_memrl.integrations.hub`: `save_pretrained` / `from_pretrained` (extra `[hub]`).
"""
