"""Errors the library raises for bad user input.

`memrl` prints these as one clear message (no traceback): each names the problem and the fix.
"""


class ConfigError(ValueError):
    """A configuration value is invalid; the message says which and how to fix it."""


class MissingDependencyError(ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message names the iteration and likely causes."""
