"""prism-marl: Prism spectral parameter sharing and its baselines for multi-agent RL, in JAX."""

import os as _os

# Single-threaded Eigen inside XLA's CPU ops: training chunks run faster on 2 cores without
# Eigen's intra-op threads (MAPPO on LBF 80-95k against 69k steps/s,
# docs/decisions/0014-no-batched-lapack.md). Set before jax is imported; a user's own
# XLA_FLAGS setting of this flag wins.
if "xla_cpu_multi_thread_eigen" not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (
        _os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
    ).strip()

import jax as _jax  # noqa: E402

# Synchronous dispatch on CPU: one computation at a time on XLA's small CPU pool. It costs
# nothing measurable for the large jitted chunks this library runs (asynchronous dispatch was
# no faster, decision 0014) and keeps a stalled phase attributable to the call that stalled.
_jax.config.update("jax_cpu_enable_async_dispatch", False)

# Opt-in persistent compilation cache: processes that build the same programs (a sweep's runs
# and their retries, a resumed run) compile once. The size limit turns on jax's file lock, so
# that concurrent processes never read a half-written entry.
if _os.environ.get("PRISM_MARL_XLA_CACHE"):
    _jax.config.update("jax_compilation_cache_dir", _os.environ["PRISM_MARL_XLA_CACHE"])
    _jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    _jax.config.update("jax_compilation_cache_max_size", 8 * 2**30)

# Threefry's 20 rounds as one fused kernel on CPU rather than jax's rolled 5-iteration loop:
# the same bits, 16-18% faster training chunks and shorter compiles (decision 0029).
from prism_marl.threefry import unroll_threefry_on_cpu as _unroll_threefry_on_cpu  # noqa: E402

_unroll_threefry_on_cpu()

# Reuse freed memory instead of faulting in fresh pages at every call of a compiled program
# (QMIX's LBF update 608 -> 434 ms; decision 0025). Process-wide; the user's own glibc malloc
# settings win.
from prism_marl.allocator import keep_freed_memory as _keep_freed_memory  # noqa: E402
from prism_marl.allocator import user_sets_malloc as _user_sets_malloc  # noqa: E402

if not _user_sets_malloc(dict(_os.environ)):
    _keep_freed_memory()

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
