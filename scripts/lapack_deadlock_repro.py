"""Reproducer: jaxlib's batched LAPACK calls deadlock XLA's CPU thread pool (2 cores).

Sixteen independent vmapped QRs (3 matrices of 64x64 each) in one jitted program: XLA runs
them at once on its intra-op pool, each splits its batch over that same pool (ParallelBatchMap)
and blocks; no thread is left to run the pieces. Run in fresh processes:
`for i in $(seq 10); do timeout 60 python this.py >/dev/null || echo hung; done`.
"""

import jax
import jax.numpy as jnp


def sixteen_batched_qrs(key):
    """Sum of the Q factors of 16 independent batches of 3 random 64x64 matrices."""
    keys = jax.random.split(key, 16)
    return sum(jnp.linalg.qr(jax.random.normal(k, (3, 64, 64)))[0].sum() for k in keys)


print(jax.jit(sixteen_batched_qrs)(jax.random.PRNGKey(0)))
