"""Optional dependencies: check or import one, or stop on one line naming the extra to install.

Ray (``prism-marl sweep --executor ray``) and brax (``mabrax:`` environments, through jaxmarl)
are extras of the package (pyproject.toml), so that the rest installs without them.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from prism_marl.errors import ConfigError


def require_extra(module: str, extra: str, needed_by: str) -> None:
    """Check that ``module``, which prism-marl's ``extra`` installs, is installed.

    Finds the module without importing it: brax prints to stdout when imported, which only
    ``envs.base.import_jaxmarl`` silences.

    Args:
        module: the module, e.g. ``"brax"``.
        extra: the extra of the ``prism-marl`` package that installs it, e.g. ``"mabrax"``.
        needed_by: the setting that needs it, which starts the error message, e.g.
            ``"env mabrax:hopper_3x1"``.

    Raises:
        ConfigError: ``module`` is not installed; the CLI prints the message on one line and
            exits 2.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or no spec to read
        found = False
    if not found:
        raise ConfigError(_message(module, extra, needed_by, "is not installed"))


def import_extra(module: str, extra: str, needed_by: str) -> ModuleType:
    """Import ``module``, which prism-marl's ``extra`` installs.

    Args:
        module: the module to import, e.g. ``"ray"``.
        extra: the extra of the ``prism-marl`` package that installs it, e.g. ``"ray"``.
        needed_by: the setting that needs it, which starts the error message, e.g.
            ``"--executor ray"``.

    Returns:
        The module.

    Raises:
        ConfigError: ``module`` is not installed or fails to import (one of its own
            dependencies missing); the CLI prints the message on one line and exits 2.
    """
    require_extra(module, extra, needed_by)
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ConfigError(
            _message(module, extra, needed_by, f"failed to import ({error})")
        ) from None


def _message(module: str, extra: str, needed_by: str, problem: str) -> str:
    return f"{needed_by} needs {module}, which {problem}: pip install 'prism-marl[{extra}]'"


__all__ = ["import_extra", "require_extra"]
