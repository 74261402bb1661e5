"""Per-group products and scalings (fast/grouped.py) against their plain formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.fast.grouped import scale_by_agent, sum_as_product


@pytest.mark.parametrize("shape", [(1, 3, 5, 4), (6, 3, 1, 4), (2, 3, 2, 4)])
def test_scale_by_agent_has_the_plain_scalings_value_and_gradients(shape):
    """Agents first (P = 1), interleaved (Q = 1) and mixed; vmapped over seeds as training
    runs it. Hand-check of one entry: ∂/∂scales[n, f] of Σ y·w is Σ_{p,q} x·w."""
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (2, *shape))  # 2 seeds
    scales = jax.random.normal(keys[1], (2, shape[1], shape[3]))
    weights = jax.random.normal(keys[2], (2, *shape))

    def loss(scaling):
        def one(x, scales, w):
            return jnp.sum(jnp.sin(scaling(x, scales)) * w)

        return jax.vmap(jax.value_and_grad(one, argnums=(0, 1)))

    plain = loss(lambda x, scales: x * scales[:, None])(x, scales, weights)
    ours = loss(scale_by_agent)(x, scales, weights)
    for got, want in zip(jax.tree.leaves(ours), jax.tree.leaves(plain), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    linear = jax.grad(lambda s: jnp.sum(scale_by_agent(x[0], s) * weights[0]))(scales[0])
    np.testing.assert_allclose(
        linear[1, 2], jnp.sum(x[0][:, 1, :, 2] * weights[0][:, 1, :, 2]), rtol=1e-5
    )


def test_sum_as_product_sums_the_middle_axis():
    """[G, B, F] -> [G, F]: by hand for a 2 x 3 x 2 array, and jnp.sum's values at random."""
    x = jnp.arange(12.0).reshape(2, 3, 2)
    np.testing.assert_allclose(sum_as_product(x), [[6.0, 9.0], [24.0, 27.0]])
    y = jax.random.normal(jax.random.key(0), (4, 7, 5))
    np.testing.assert_allclose(sum_as_product(y), jnp.sum(y, axis=1), rtol=1e-5, atol=1e-6)
