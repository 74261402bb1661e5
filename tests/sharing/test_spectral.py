"""Spectral math against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.sharing.spectral import (
    effective_rank,
    mask_values,
    mean_pairwise_distance,
    orthogonality_penalty,
    spectral_init,
)


def test_spectral_init_reconstructs_kernel_at_full_rank():
    kernel = jax.random.normal(jax.random.key(0), (7, 5))
    u, s, v = spectral_init(kernel, 5)
    assert u.shape == (5, 5) and s.shape == (5,) and v.shape == (7, 5)
    np.testing.assert_allclose((v * s) @ u.T, kernel, atol=1e-5)
    assert float(orthogonality_penalty(u, v)) < 1e-10


def test_spectral_init_truncates_to_best_rank():
    kernel = jnp.diag(jnp.array([3.0, 2.0, 1.0]))
    u, s, v = spectral_init(kernel, 2)
    np.testing.assert_allclose(s, [3.0, 2.0], atol=1e-6)
    np.testing.assert_allclose((v * s) @ u.T, jnp.diag(jnp.array([3.0, 2.0, 0.0])), atol=1e-6)


def test_orthogonality_penalty_hand_value():
    # U = 2·I_2 gives ‖4I − I‖² = 2·9 = 18; V orthonormal adds 0.
    u = 2.0 * jnp.eye(2)
    v = jnp.eye(3)[:, :2]
    assert float(orthogonality_penalty(u, v)) == pytest.approx(18.0)


def test_mean_pairwise_distance_hand_value():
    masks = jnp.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    # pairs: (0,1) 1/4, (0,2) 3/4, (1,2) 4/4 -> mean 2/3
    assert float(mean_pairwise_distance(masks)) == pytest.approx(2.0 / 3.0)
    assert float(mean_pairwise_distance(jnp.ones((3, 4)) * 0.3)) == 0.0
    assert float(mean_pairwise_distance(jnp.ones((1, 4)))) == 0.0


def test_spectral_distance_weights_by_singular_values():
    masks = jnp.array([[1.0, 0.0], [0.0, 0.0]])
    s = jnp.array([3.0, 1.0])
    # ‖s ⊙ (m0 − m1)‖₁ / ‖s‖₁ = 3 / 4, one pair
    assert float(mean_pairwise_distance(masks, s)) == pytest.approx(0.75)


def test_effective_rank_bounds():
    assert float(effective_rank(jnp.ones(8))) == pytest.approx(8.0, rel=1e-5)
    assert float(effective_rank(jnp.array([5.0, 0.0, 0.0]))) == pytest.approx(1.0)
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2 -> exp = 2^1.5
    assert float(effective_rank(jnp.array([2.0, 1.0, 1.0]))) == pytest.approx(2**1.5, rel=1e-5)


def test_mask_kinds_and_straight_through_gradient():
    logits = jnp.array([-1.0, 0.5, 2.0])
    np.testing.assert_allclose(mask_values(logits, "sigmoid"), jax.nn.sigmoid(logits))
    np.testing.assert_allclose(mask_values(logits, "hard"), [0.0, 1.0, 1.0])
    np.testing.assert_allclose(mask_values(logits, "scale"), logits)
    grad = jax.grad(lambda x: jnp.sum(mask_values(x, "hard")))(logits)
    sig = jax.nn.sigmoid(logits)
    np.testing.assert_allclose(grad, sig * (1 - sig), rtol=1e-6)
