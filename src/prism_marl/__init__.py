"""prism-marl: Prism spectral parameter sharing and its baselines for multi-agent RL, in JAX.

Importing the package changes no process-wide setting (decision 0040). ``tune_cpu()`` applies
the CPU settings the documented speeds were measured with; the ``prism-marl`` command calls it
first, and a script that trains through the library should too.
"""

from prism_marl.cpu import tune_cpu

__version__ = "0.1.0"

# The environment registry at the top level, imported on first use: ``import prism_marl`` stays
# free of the environment adapters' imports.
_LAZY = {name: "prism_marl.envs" for name in ("register_env", "registered_envs", "unregister_env")}


def __getattr__(name: str) -> object:
    """``prism_marl.register_env`` and friends, imported from ``prism_marl.envs`` on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prism_marl' has no attribute {name!r}")


__all__ = ["__version__", "tune_cpu", *_LAZY]
