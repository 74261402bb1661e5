"""``tune_cpu()``: the process-wide settings this library's training was measured with on CPU.

``import prism_marl`` changes nothing outside the package (decision 0040); the ``prism-marl``
command calls ``tune_cpu()`` first, and so do the processes it starts (a sweep's runs are
``prism-marl train`` processes). A script or notebook that trains through the library calls it
itself, first, to get the speed docs/benchmarks.md reports.
"""

from __future__ import annotations

import os
import warnings

from prism_marl.allocator import keep_freed_memory, user_sets_malloc
from prism_marl.threefry import unroll_threefry_on_cpu

EIGEN_FLAG = "--xla_cpu_multi_thread_eigen=false"
XLA_CACHE_VARIABLE = "PRISM_MARL_XLA_CACHE"
"""A directory for jax's persistent compilation cache; ``tune_cpu`` turns it on when set."""


def tune_cpu() -> None:
    """Apply the CPU settings this library's numbers were measured with, process-wide.

    Call it first: before the first jax computation, and before importing a module that
    computes at import (``jumanji`` does, and ``prism_marl.envs.lbf`` imports it). Importing
    jax first is fine: XLA reads its flags when jax creates the CPU backend, at the first
    computation. Calling it again changes nothing more. What it changes:

    - ``XLA_FLAGS`` gains ``--xla_cpu_multi_thread_eigen=false``: single-threaded Eigen inside
      XLA's CPU ops, faster training chunks on 2 cores (MAPPO on LBF 80-95k against 69k
      steps/s; decision 0014). Child processes inherit it. A ``XLA_FLAGS`` that already sets
      the flag wins.
    - ``jax_cpu_enable_async_dispatch`` becomes False: one computation at a time, which costs
      nothing measurable for large jitted chunks and keeps a stalled phase attributable to the
      call that stalled (decision 0014).
    - jax's Threefry PRNG lowers unrolled on CPU: the same bits, 16-18% faster training
      chunks and shorter compiles (decision 0029; ``prism_marl.threefry``). Where jax lacks
      the private rule it warns and keeps jax's own lowering.
    - glibc's ``malloc`` keeps freed memory for the next call instead of mapping fresh pages
      (QMIX's LBF update 608 -> 434 ms, peak resident size 2.0 -> 2.6 GB; decision 0025;
      ``prism_marl.allocator``). Skipped where the environment sets glibc's malloc
      (``MALLOC_*_``, ``GLIBC_TUNABLES``) or the C library is not glibc.
    - Where ``PRISM_MARL_XLA_CACHE`` names a directory, jax's persistent compilation cache
      there (processes that build the same programs, a sweep's runs and their retries,
      compile once; the size limit turns on jax's file lock for concurrent processes).

    Warns, and still applies what it can, when jax's backend already runs: single-threaded
    Eigen and synchronous dispatch then take effect only in processes started afterwards.
    """
    import jax

    started = _backend_started()
    late = []
    if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {EIGEN_FLAG}".strip()
        late.append("XLA_FLAGS")
    if jax.config.values.get("jax_cpu_enable_async_dispatch", True):
        jax.config.update("jax_cpu_enable_async_dispatch", False)
        late.append("synchronous dispatch")
    if started and late:
        warnings.warn(
            f"prism_marl.tune_cpu(): jax's backend already runs, so {' and '.join(late)} "
            "take effect only in processes started from now; call tune_cpu() before the "
            "first jax computation",
            RuntimeWarning,
            stacklevel=2,
        )
    unroll_threefry_on_cpu()
    if not user_sets_malloc(dict(os.environ)):
        keep_freed_memory()
    if os.environ.get(XLA_CACHE_VARIABLE):
        jax.config.update("jax_compilation_cache_dir", os.environ[XLA_CACHE_VARIABLE])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
        jax.config.update("jax_compilation_cache_max_size", 8 * 2**30)


def _backend_started() -> bool:
    """Whether jax has created its backends (False where this jax cannot say)."""
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return False


__all__ = ["EIGEN_FLAG", "XLA_CACHE_VARIABLE", "tune_cpu"]
