"""Spectral math of the Prism layer: SVD initialisation, masks and the two regularisers.

Axis glossary: N agents, R rank, D input features, O output features.
Reference: Kim, Oh & Kim, "Prism: Spectral Parameter Sharing for Multi-Agent Reinforcement
Learning", arXiv 2602.06476 (2026); the exact formulas are the project's specification in
``docs/method.md`` (the paper's equations are not public).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

MaskKind = Literal["sigmoid", "hard", "scale"]
DiversityOn = Literal["masks", "spectra"]


def spectral_init(kernel: jax.Array, rank: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Factor a dense kernel as ``kernel = V diag(s) Uᵀ`` and keep the top ``rank`` directions.

    With the layer written as y = W x, W = kernelᵀ ∈ R^{O×D}, this is W = U diag(s) Vᵀ.

    Args:
        kernel: [D, O] dense kernel in the ``y = x @ kernel`` convention.
        rank: R ≤ min(D, O).

    Returns:
        (U [O, R], s [R], V [D, R]) with orthonormal columns in U and V and s ≥ 0 descending,
        so that ``V @ diag(s) @ U.T == kernel`` when R = min(D, O).
    """
    left, singular, right_t = jnp.linalg.svd(kernel, full_matrices=False)
    return right_t[:rank].T, singular[:rank], left[:, :rank]


def mask_values(logits: jax.Array, kind: MaskKind) -> jax.Array:
    """Spectral masks m from mask logits ℓ (method.md §1), elementwise.

    ``sigmoid``: m = σ(ℓ). ``hard``: m = 1[ℓ > 0] forward, ∂m/∂ℓ = σ'(ℓ) backward
    (straight-through). ``scale``: m = ℓ, unconstrained.

    Args:
        logits: [..., R].
        kind: sigmoid, hard or scale.

    Returns:
        masks of the same shape.
    """
    if kind == "scale":
        return logits
    soft = jax.nn.sigmoid(logits)
    if kind == "sigmoid":
        return soft
    hard = (logits > 0).astype(logits.dtype)
    return soft + jax.lax.stop_gradient(hard - soft)


def orthogonality_penalty(u: jax.Array, v: jax.Array) -> jax.Array:
    """L_orth = ‖UᵀU − I_R‖²_F + ‖VᵀV − I_R‖²_F for one spectral layer.

    Args:
        u: [O, R].
        v: [D, R].

    Returns:
        scalar ≥ 0, zero iff both have orthonormal columns.
    """
    eye = jnp.eye(u.shape[-1], dtype=u.dtype)
    return jnp.sum(jnp.square(u.T @ u - eye)) + jnp.sum(jnp.square(v.T @ v - eye))


def mean_pairwise_distance(
    masks: jax.Array,
    singular_values: jax.Array | None = None,
    *,
    scale_invariant: bool = False,
) -> jax.Array:
    """Mean pairwise L1 distance between agents' masks, D ∈ [0, 1].

    D = 2 / (N(N−1)) Σ_{i<j} d_ij with weights w = 1, or w = |s| when ``singular_values`` s
    is given (the spectra variant). Default form, for masks in [0, 1]:

        d_ij = ‖w ⊙ (m_i − m_j)‖₁ / ‖w‖₁        (‖w‖₁ = R when w = 1)

    ``scale_invariant`` form, for unconstrained masks (Prism's ``scale`` kind):

        d_ij = ‖w ⊙ (m_i − m_j)‖₁ / (‖w ⊙ m_i‖₁ + ‖w ⊙ m_j‖₁)

    with the denominator floored at ε = 1e-12 (two zero masks are at distance 0). By the
    triangle inequality d_ij ∈ [0, 1] for masks of any sign and size, and D(c·m) = D(m) for
    every c > 0. The default form grows linearly with the masks' scale, so for unconstrained
    masks −λ·D is unbounded below and the optimiser could lower the loss by inflating the
    masks alone; the invariant form leaves it only the masks' directions to move. Zero when
    N = 1.

    Args:
        masks: [N, R].
        singular_values: optional [R].
        scale_invariant: use the scale-invariant form.

    Returns:
        scalar.
    """
    num_agents, rank = masks.shape
    if num_agents < 2:
        return jnp.zeros((), masks.dtype)
    diff = jnp.abs(masks[:, None, :] - masks[None, :, :])
    if scale_invariant:
        weights = jnp.ones((rank,), masks.dtype) if singular_values is None else singular_values
        weights = jnp.abs(weights)
        sizes = jnp.sum(jnp.abs(masks) * weights, axis=-1)  # [N]
        denominator = jnp.maximum(sizes[:, None] + sizes[None, :], 1e-12)
        per_pair = jnp.sum(diff * weights, axis=-1) / denominator
    elif singular_values is None:
        per_pair = jnp.sum(diff, axis=-1) / rank
    else:
        weights = jnp.abs(singular_values)
        per_pair = jnp.sum(diff * weights, axis=-1) / jnp.maximum(jnp.sum(weights), 1e-12)
    # The full [N, N] sum counts each unordered pair twice; the diagonal is zero.
    return jnp.sum(per_pair) / (num_agents * (num_agents - 1))


def effective_rank(spectrum: jax.Array) -> jax.Array:
    """Effective rank exp(H(p)), p = |σ| / ‖σ‖₁ (Roy & Vetterli, EUSIPCO 2007).

    Args:
        spectrum: [..., R] singular values (any sign; magnitudes are used).

    Returns:
        [...] values in [1, R] (R when the spectrum is flat, 1 when one value dominates).
    """
    mags = jnp.abs(spectrum)
    probs = mags / jnp.maximum(jnp.sum(mags, axis=-1, keepdims=True), 1e-12)
    entropy = -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.maximum(probs, 1e-30)), 0.0), -1)
    return jnp.exp(entropy)
