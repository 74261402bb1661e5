"""Spectral math of the Prism layer: SVD initialisation, masks and the two regularisers.

Axis glossary: N agents, R rank, D input features, O output features.
Reference: Kim, Oh & Kim, "Prism: Spectral Parameter Sharing for Multi-Agent Reinforcement
Learning", arXiv 2602.06476 (2026); the exact formulas are the project's specification in
``docs/method.md`` (the paper's equations are not public).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import jax
import jax.numpy as jnp

MaskKind = Literal["sigmoid", "hard", "scale"]
DiversityOn = Literal["masks", "spectra"]
Regularise = Literal["loss", "decoupled"]


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


def spectrum_gain(out_features: int, in_features: int, rank: int) -> float:
    """κ = √(D·O / R): the gain of a scaled spectrum, s = κ·ŝ (docs/decisions/0034).

    Adam moves every parameter by about its learning rate η per step, whatever the gradient's
    size. A dense [D, O] kernel's D·O entries can so move ‖W‖_F by up to η·√(D·O) per step;
    R singular values move it by only η·√R. Training ŝ with s = κ·ŝ moves each s_k by κ·η
    and ‖W‖_F by η·√(D·O), as a dense layer's step does. Under Adam this is the same as a
    learning rate κ times larger on s, but it lives in the layer, so every algorithm and
    optimiser sees it.

    Args:
        out_features: O.
        in_features: D.
        rank: R.

    Returns:
        κ ≥ 1 (R ≤ min(D, O)).
    """
    return math.sqrt(in_features * out_features / rank)


def singular_values(layer: Mapping[str, jax.Array], scaled: bool) -> jax.Array:
    """The singular values s [R] of one spectral layer's parameters {U [O, R], V [D, R], s}.

    With ``scaled`` the stored ``s`` is ŝ and s = κ·ŝ (``spectrum_gain``); otherwise the
    stored ``s`` itself.
    """
    stored = layer["s"]
    if not scaled:
        return stored
    gain = spectrum_gain(layer["U"].shape[0], layer["V"].shape[0], stored.shape[-1])
    return stored * gain


def direction_gains(out_features: int, in_features: int) -> tuple[float, float]:
    """(γ_U, γ_V) = (√D, √O): the gains of scaled directions, U = γ_U·Û, V = γ_V·V̂.

    With U and V orthonormal, Adam turns U's columns by about η·√O radians per step (η per
    entry), whatever the layer's scale, while a dense [D, O] kernel with singular values σ
    turns its left singular vectors by about η·√(D·O)/σ. Training Û with U = √D·Û turns them
    at the dense kernel's rate for σ = 1 (and V likewise with √O). Under Adam this equals a
    γ-times learning rate on U and V; the orthogonality term still acts on U and V themselves
    (docs/decisions/0054, a probe).

    Args:
        out_features: O.
        in_features: D.

    Returns:
        (γ_U, γ_V).
    """
    return math.sqrt(in_features), math.sqrt(out_features)


def factor_gains(layer: Mapping[str, jax.Array], scaled: bool) -> tuple[float, float]:
    """(γ_U, γ_V) of one spectral layer's parameters {U [O, R], V [D, R], ...}.

    ``direction_gains`` with ``scaled`` (scaled directions), else (1, 1).
    """
    if not scaled:
        return 1.0, 1.0
    return direction_gains(layer["U"].shape[0], layer["V"].shape[0])


def factors(layer: Mapping[str, jax.Array], scaled: bool) -> tuple[jax.Array, jax.Array]:
    """U [O, R] and V [D, R] of one spectral layer's parameters.

    The stored ones times ``factor_gains``: Û, V̂ times their gains with scaled directions.
    """
    gain_u, gain_v = factor_gains(layer, scaled)
    return layer["U"] * gain_u, layer["V"] * gain_v


def renormalise_factors(
    u: jax.Array, v: jax.Array, s: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Move the norms of U's and V's columns into s; every U diag(s ⊙ m) Vᵀ is unchanged.

    U diag(s ⊙ m) Vᵀ = Σ_k s_k m_k u_k v_kᵀ = Σ_k (s_k ‖u_k‖ ‖v_k‖) m_k û_k v̂_kᵀ with
    û_k = u_k / ‖u_k‖: matrix products and elementwise operations only (no QR or SVD,
    docs/decisions/0014). Columns of zero norm are left as they are.

    Args:
        u: [O, R].
        v: [D, R].
        s: [R] singular values (or ŝ: the factor is the same for s = κ·ŝ).

    Returns:
        (U [O, R] with unit columns, V [D, R] with unit columns, s [R]).
    """
    u_norms = jnp.linalg.norm(u, axis=0)
    v_norms = jnp.linalg.norm(v, axis=0)
    u_norms = jnp.where(u_norms > 0, u_norms, 1.0)
    v_norms = jnp.where(v_norms > 0, v_norms, 1.0)
    return u / u_norms, v / v_norms, s * u_norms * v_norms


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


def kernel_norms(u: jax.Array, v: jax.Array, spectra: jax.Array) -> jax.Array:
    """‖W_i‖_F of every agent's kernel W_i = U diag(d_i) Vᵀ, without building W_i.

    ‖W_i‖²_F = tr(V D_i UᵀU D_i Vᵀ) = Σ_jk d_ij d_ik (UᵀU)_jk (VᵀV)_jk, which equals ‖d_i‖₂²
    when U and V are orthonormal.

    Args:
        u: [O, R].
        v: [D, R].
        spectra: [N, R] per-agent spectra d_i = s ⊙ m_i.

    Returns:
        [N] Frobenius norms.
    """
    gram = (u.T @ u) * (v.T @ v)  # [R, R]
    squared = jnp.einsum("nj,jk,nk->n", spectra, gram, spectra)
    return jnp.sqrt(jnp.maximum(squared, 0.0))


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
