"""The errors the command line turns into one-line messages and exit statuses."""

from __future__ import annotations

from prism_marl.sharing.base import ConfigError


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the run stopped before checkpointing the bad state."""


__all__ = ["ConfigError", "TrainingDivergedError"]
