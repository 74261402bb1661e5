"""Spectral math against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.sharing.spectral import (
    effective_rank,
    kernel_norms,
    mask_values,
    mean_pairwise_distance,
    orthogonality_penalty,
    renormalise_factors,
    singular_values,
    spectral_init,
    spectrum_gain,
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


def test_scale_invariant_distance_hand_values():
    # Sizes ‖m‖₁ = 2, 2, 1. Pairs: (0,1) 2/4, (0,2) 3/3, (1,2) 3/3 -> mean 5/6.
    masks = jnp.array([[2.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
    assert float(mean_pairwise_distance(masks, scale_invariant=True)) == pytest.approx(5 / 6)
    # Spectra: w = |s| = (3, 1); w ⊙ m = (3, 2) and (3, 0), sizes 5 and 3, weighted diff 2.
    pair = jnp.array([[1.0, 2.0], [1.0, 0.0]])
    for s in (jnp.array([3.0, 1.0]), jnp.array([-3.0, 1.0])):
        assert float(mean_pairwise_distance(pair, s, scale_invariant=True)) == pytest.approx(0.25)
    assert float(mean_pairwise_distance(jnp.zeros((3, 4)), scale_invariant=True)) == 0.0
    assert float(mean_pairwise_distance(jnp.ones((1, 4)), scale_invariant=True)) == 0.0


@pytest.mark.parametrize("spectra", [False, True])
def test_scale_invariant_distance_bounded_for_any_sign_and_scale(spectra):
    for seed in range(8):
        key_m, key_s, key_c = jax.random.split(jax.random.key(seed), 3)
        num_agents = 2 + seed % 4
        scale = 10.0 ** jax.random.uniform(key_c, minval=-3, maxval=4)
        masks = scale * jax.random.normal(key_m, (num_agents, 6))
        s = jax.random.normal(key_s, (6,)) if spectra else None
        value = float(mean_pairwise_distance(masks, s, scale_invariant=True))
        assert 0.0 <= value <= 1.0 + 1e-6
    # The bound is attained by opposite masks, m_1 = −m_0.
    opposite = jnp.array([[0.3, -2.0, 1.0], [-0.3, 2.0, -1.0]])
    assert float(mean_pairwise_distance(opposite, scale_invariant=True)) == pytest.approx(1.0)


@pytest.mark.parametrize("spectra", [False, True])
def test_scale_invariant_distance_ignores_common_rescaling(spectra):
    masks = jax.random.normal(jax.random.key(1), (4, 5))
    s = jnp.array([3.0, 2.0, 1.0, 0.5, 0.1]) if spectra else None
    base = float(mean_pairwise_distance(masks, s, scale_invariant=True))
    for c in (1e-3, 0.5, 7.0, 1e4):
        scaled = float(mean_pairwise_distance(c * masks, s, scale_invariant=True))
        assert scaled == pytest.approx(base, rel=1e-5)


@pytest.mark.parametrize("spectra", [False, True])
def test_diversity_gradient_does_not_push_scale_masks_outward(spectra):
    masks = jax.random.normal(jax.random.key(2), (4, 5))
    s = jnp.array([3.0, 2.0, 1.0, 0.5, 0.1]) if spectra else None

    def loss(m, invariant):
        return -mean_pairwise_distance(m, s, scale_invariant=invariant)

    # d/dc L(c·m) at c = 1 is ⟨∇L, m⟩: zero when L is scale-invariant, so a gradient step has
    # no component along m. The plain form is 1-homogeneous (⟨∇L, m⟩ = L < 0), which is the
    # outward push that made `scale` masks unbounded.
    grad = jax.grad(loss)(masks, True)
    assert float(jnp.linalg.norm(grad)) > 1e-3
    assert abs(float(jnp.vdot(grad, masks))) < 1e-5 * float(
        jnp.linalg.norm(grad) * jnp.linalg.norm(masks)
    )
    plain = jax.grad(loss)(masks, False)
    assert float(jnp.vdot(plain, masks)) == pytest.approx(float(loss(masks, False)), rel=1e-5)


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


def test_spectrum_gain_and_scaled_singular_values_hand_values():
    # D = 6, O = 4, R = 3: κ = √(24 / 3) = √8.
    assert spectrum_gain(4, 6, 3) == pytest.approx(np.sqrt(8.0))
    layer = {"U": jnp.zeros((4, 3)), "V": jnp.zeros((6, 3)), "s": jnp.array([1.0, 0.5, -2.0])}
    np.testing.assert_allclose(singular_values(layer, scaled=False), layer["s"])
    np.testing.assert_allclose(singular_values(layer, scaled=True), np.sqrt(8.0) * layer["s"])


def test_renormalise_factors_hand_value_and_kernel_unchanged():
    # Column norms: U (2, 1), V (3, 0.5); s = (1, 4) becomes (1·2·3, 4·1·0.5) = (6, 2).
    u = jnp.array([[2.0, 0.0], [0.0, 1.0]])
    v = jnp.array([[3.0, 0.0], [0.0, 0.3], [0.0, 0.4]])
    s = jnp.array([1.0, 4.0])
    new_u, new_v, new_s = renormalise_factors(u, v, s)
    np.testing.assert_allclose(new_s, [6.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(jnp.linalg.norm(new_u, axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(jnp.linalg.norm(new_v, axis=0), 1.0, atol=1e-6)
    keys = jax.random.split(jax.random.key(1), 3)
    u = jax.random.normal(keys[0], (5, 3))
    v = jax.random.normal(keys[1], (7, 3))
    mask = jax.random.uniform(keys[2], (3,))
    new_u, new_v, new_s = renormalise_factors(u, v, s=jnp.array([0.3, -1.0, 2.0]))
    before = (u * (jnp.array([0.3, -1.0, 2.0]) * mask)) @ v.T
    np.testing.assert_allclose((new_u * (new_s * mask)) @ new_v.T, before, atol=1e-5)


def test_kernel_norms_equal_the_built_kernels_norms():
    keys = jax.random.split(jax.random.key(2), 3)
    u = jax.random.normal(keys[0], (5, 3))  # deliberately not orthonormal
    v = jax.random.normal(keys[1], (4, 3))
    spectra = jax.random.normal(keys[2], (2, 3))
    expected = [jnp.linalg.norm((u * d) @ v.T) for d in spectra]
    np.testing.assert_allclose(kernel_norms(u, v, spectra), expected, rtol=1e-5)
    # Orthonormal U and V: ‖W_i‖_F = ‖d_i‖₂ = 5 for d = (3, 4).
    eye = jnp.eye(3)[:, :2]
    assert float(kernel_norms(eye, eye, jnp.array([[3.0, 4.0]]))[0]) == pytest.approx(5.0)
