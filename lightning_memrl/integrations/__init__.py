"""Adapters to other libraries; each module imports its optional dependency only when imported.

- `lightning_memrl.integrations.sb3`: `SB3ReplayBufferWrapper`, `TerminalSegmenter` (extra `[sb3]`).
- `lightning_memrl.integrations.sb3`: `TransitionRecorder`, hippotorch's wrapper form (extra `[sb3]`).
- `lightning_memrl.integrations.hub`: `save_pretrained`, `load_pretrained_into`, `load_memory_store` (extra `[hub]`).
- `lightning_memrl.integrations.hub`: hippotorch's `push_memory_to_hub`, `load_memory_from_hub` (extra `[hub]`).
"""
