"""Kaleidoscope's masked kernels (sharing/kaleidoscope.py) against their plain formulas."""

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.sharing import Kaleidoscope
from prism_marl.sharing.kaleidoscope import soft_threshold


def plain_soft_threshold(kernel, thresholds):
    return jnp.sign(kernel) * jax.nn.relu(jnp.abs(kernel) - jax.nn.sigmoid(thresholds))


def test_soft_threshold_has_autodiffs_value_and_gradients():
    """Some weights pruned, some kept, per mask; vmapped over seeds as training runs it."""
    keys = jax.random.split(jax.random.key(0), 3)
    kernel = jax.random.normal(keys[0], (2, 5, 4))  # 2 seeds, D = 5, O = 4
    thresholds = jax.random.normal(keys[1], (2, 3, 5, 4))  # M = 3 masks
    weights = jax.random.normal(keys[2], (2, 3, 5, 4))

    def loss(masking):
        def one(kernel, thresholds, w):
            return jnp.sum(jnp.sin(masking(kernel, thresholds)) * w)

        return jax.vmap(jax.value_and_grad(one, argnums=(0, 1)))

    kept = np.abs(kernel)[:, None] > jax.nn.sigmoid(thresholds)
    assert 0.1 < kept.mean() < 0.9  # both branches exercised
    plain = loss(plain_soft_threshold)(kernel, thresholds, weights)
    ours = loss(soft_threshold)(kernel, thresholds, weights)
    for got, want in zip(jax.tree.leaves(ours), jax.tree.leaves(plain), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_soft_threshold_kernel_gradient_by_hand():
    """∂/∂W of Σ_m Σ W_m·w is Σ_m w_m where |W| > σ(S_m): here masks 0 and 2 keep W[0, 0]."""
    kernel = jnp.array([[0.9, -0.1]])
    thresholds = jnp.array([[[-3.0, 5.0]], [[9.0, 9.0]], [[0.0, -9.0]]])  # σ: .05, 1, .5
    weights = jnp.array([[[1.0, 1.0]], [[10.0, 10.0]], [[100.0, 100.0]]])
    grad = jax.grad(lambda k: jnp.sum(soft_threshold(k, thresholds) * weights))(kernel)
    # |W[0, 0]| = 0.9 beats σ = 0.05 and 0.5 (masks 0, 2), not σ(9) ≈ 1; |W[0, 1]| = 0.1
    # beats σ(-9) ≈ 1.2e-4 only (mask 2).
    np.testing.assert_allclose(grad, [[101.0, 100.0]], rtol=1e-6)


def test_diversity_term_moves_thresholds_only():
    """Kaleidoscope's diversity term: no gradient reaches the shared kernel (|W| detached)."""
    strategy = Kaleidoscope()
    layer = strategy.dense(4, 3, depth=1, name="layer")
    variables = layer.init(jax.random.key(0), jnp.ones((3, 5)), jnp.arange(3))
    params = dict(variables["params"])
    # Masks that differ: mask 0 prunes every weight, the others almost nothing.
    params["thresholds"] = params["thresholds"].at[0].set(9.0)

    def diversity(p):
        return strategy.diversity({**variables, "params": p})["diversity"]

    assert float(diversity(params)) > 0
    grads = jax.grad(diversity)(params)
    np.testing.assert_array_equal(grads["kernel"], 0.0)
    assert float(jnp.sum(jnp.abs(grads["thresholds"]))) > 0
