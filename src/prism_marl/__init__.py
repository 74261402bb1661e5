"""prism-marl: Prism spectral parameter sharing and its baselines for multi-agent RL, in JAX."""

import os as _os

# XLA's multi-threaded Eigen pool on CPU can wedge (every worker parked, the caller waiting in
# block_until_ready) on vmapped training graphs: seen here on a first training chunk, and
# reported upstream for vmap graphs; see docs/decisions/0009-cpu-wedge.md.
# Set before jax is imported; a user's own XLA_FLAGS setting of this flag wins.
if "xla_cpu_multi_thread_eigen" not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (
        _os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
    ).strip()

import jax as _jax  # noqa: E402

# With asynchronous dispatch, several dependent computations can be in flight on XLA's small
# CPU thread pool at once; runs here wedged that way with every thread waiting. Dispatching
# synchronously on CPU costs little for the large jitted chunks this library runs.
_jax.config.update("jax_cpu_enable_async_dispatch", False)

__version__ = "0.1.0"
