"""Reproducer for an XLA CPU hang: batched LAPACK calls split over the pool they run on.

Two independent vmapped QR factorisations of 64x64 matrices in one jitted function can run at
once on XLA's intra-op pool (2 threads on 2 cores); each splits its batch over that same pool
(jaxlib's ParallelBatchMap) and waits for the pieces, which no free thread is left to run.
Run it in fresh processes: `for i in $(seq 20); do timeout 60 python this.py || echo hang; done`.
"""

import jax
import jax.numpy as jnp


def two_batched_qrs(key):
    a, b = jax.random.normal(key, (2, 16, 64, 64))
    return jnp.linalg.qr(a)[0].sum() + jnp.linalg.qr(b)[0].sum()


print(jax.jit(two_batched_qrs)(jax.random.PRNGKey(0)))
