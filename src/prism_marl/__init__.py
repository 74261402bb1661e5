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

__version__ = "0.1.0"
