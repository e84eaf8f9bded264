"""Errors the library raises for bad user input.

`memrl` prints these as one clear message (no traceback): each names the problem and the fix.
"""


class ConfigError(ValueError):
    """A configuration value is invalid; the message says which and how to fix it."""


class MissingDependencyError(ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message names the iteration and likely causes."""


class EnvError(RuntimeError):
    """An environment misbehaved (raised, or returned what its spaces do not allow, or values that are not
    finite); the message names the env, the step and the field. `env_raised`: the env's own code raised
    (its traceback, the `__cause__`, is worth showing)."""

    def __init__(self, message: str, *, env_raised: bool = False):
        super().__init__(message)
        self.env_raised = env_raised
