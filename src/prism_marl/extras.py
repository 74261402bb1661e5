"""Optional dependencies: import one, or stop with a one-line error naming the extra to install.

Ray (``prism-marl sweep --executor ray``) and brax (``mabrax:`` environments, through jaxmarl)
are extras of the package (pyproject.toml), so that the rest installs without them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from prism_marl.errors import ConfigError


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
        ConfigError: ``module`` is not installed or fails to import; the CLI prints the message
            on one line and exits 2.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = error.name == module or error.name is None
        problem = "is not installed" if missing else f"failed to import ({error})"
        raise ConfigError(
            f"{needed_by} needs {module}, which {problem}: pip install 'prism-marl[{extra}]'"
        ) from None


__all__ = ["import_extra"]
