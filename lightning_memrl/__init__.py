"""lightning-memrl: memory-augmented reinforcement learning for PyTorch Lightning."""

__version__ = "0.1.0"
