"""The errors the command line turns into one-line messages and exit statuses.

Every module raises ``ConfigError`` (through ``require``) for a setting that cannot work; the
CLI prints its message on one line and exits 2. ``TrainingDivergedError`` ends a run whose
loss stopped being finite. ``RunLockedError`` stops a second process from training a run
directory another process is training.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the field and valid values."""


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the run stopped before checkpointing the bad state."""


class RunLockedError(RuntimeError):
    """Another process holds the run directory's lock (``prism_marl.runlock``)."""


def require(condition: bool, field: str, message: str) -> None:
    """Raise ``ConfigError(f"{field}: {message}")`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{field}: {message}")


__all__ = ["ConfigError", "RunLockedError", "TrainingDivergedError", "require"]
