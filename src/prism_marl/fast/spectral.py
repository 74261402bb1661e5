"""Prism's layer, fast: factored products or per-agent matrices, chosen from static shapes.

``spectral_project`` computes y_a = x V diag(s ⊙ m_a) Uᵀ (``SpectralDense``'s reference is its
``kernel_and_bias``; tests/sharing/test_contract.py holds every path to it) by the path a FLOP
model prices cheapest: the factored products (x V, scale, Uᵀ: B·R·(D + O), never building the
N kernels), the same with each agent's spectrum folded into its Uᵀ (agents first), or the N
per-agent matrices V diag(s ⊙ m_a) Uᵀ and one grouped product.
Axis glossary: B samples, N agents, R rank, D input features, O output features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from prism_marl.fast.grouped import (
    GATHER_COST_FACTOR,
    apply_group_kernels,
    flat_matmul,
    scale_by_agent,
    use_gather,
)
from prism_marl.fast.loops import kernels_reused

# Agent-major, the factored path runs two thin products and a scaling where the matrix path
# runs one batched product; per FLOP it ran 0.9-1.5x slower (median about 1.3x) in
# ``bench layers`` at rank width/2, where the FLOPs of the two paths are equal, so it is
# charged 1.4x its FLOPs (2026-12-03, docs/benchmarks.md). In a loop of T steps over fixed
# parameters (``reused_kernels``: rollouts, evaluation) the matrix path's kernels are built
# once for the loop, so each step is charged N·D·R·O / T of them (docs/decisions/0048).
FACTORED_OVERHEAD = 1.4

# With agents first and at least 4 rows per agent per singular value, the factored path folds
# each agent's spectrum into its own diag(s ⊙ m_i) Uᵀ (``folds_spectra``): the second thin
# product runs batched over agents and the [B, R] scaling and its per-agent reduction go away.
# In ``bench layers`` (2026-12-03, agents first) it ran 0.63-0.92x FuPS at rank width/4
# against 0.91-1.27x for the scaling, and 1.04-1.20x against 1.5-1.75x at width/2;
# docs/decisions/0028.
FOLDED_OVERHEAD = 1.1


# Rows per agent per singular value below which the folded path's N small products ran
# slower than the scaling: at N = 32 of 4,096 samples (Q = 128) and R = 64, width 256, folded
# 0.88-0.91x FuPS against 0.76-0.79x scaled; at Q = 8R (N = 32, width 64, R = 16; N = 16,
# width 128, R = 32) folding still won, 0.94-0.95x against 0.97-1.02x (docs/decisions/0031).
FOLD_MIN_ROWS_PER_RANK = 4


def folds_spectra(x_shape: tuple[int, ...], rank: int) -> bool:
    """Whether the agent-major factored path folds the spectra into per-agent Uᵀ.

    ``x_shape`` is the agent-major [P, N, Q, D]: only with agents first (P = 1) and
    Q ≥ ``FOLD_MIN_ROWS_PER_RANK``·R rows per agent. With agents interleaved (P > 1) the
    batched product needs transposes of activations, and with few rows per agent N small
    products ran slower than the scaling (docs/decisions/0028, 0031).
    """
    return x_shape[0] == 1 and x_shape[2] >= FOLD_MIN_ROWS_PER_RANK * rank


def factored_is_cheaper(
    batch: int,
    num_agents: int,
    in_features: int,
    out_features: int,
    rank: int,
    agent_major: bool = False,
    reused: int = 1,
    folded: bool = False,
) -> bool:
    """Static path choice from shapes (FLOP model); ``batch`` counts samples of all agents.

    Factored: B·R·(D + O). Per-agent matrices: N·D·R·O to build every W_i, then the product:
    B·D·O agent-major (one batched product), otherwise the grouped product (G·B·D·O over all
    agents, or a gather costing ``GATHER_COST_FACTOR``·B·D·O). Agent-major, the factored path
    is charged ``FACTORED_OVERHEAD`` times its FLOPs, or ``FOLDED_OVERHEAD`` when it folds
    the spectra (``folded``, ``folds_spectra``); when one build serves the ``reused`` steps
    of a loop, each step is charged its share, N·D·R·O / ``reused``.
    """
    factored: float = batch * rank * (in_features + out_features)
    if agent_major:
        factored *= FOLDED_OVERHEAD if folded else FACTORED_OVERHEAD
        product_groups = 1
    else:
        product_groups = GATHER_COST_FACTOR if use_gather(num_agents) else num_agents
    matrices: float = product_groups * batch * in_features * out_features
    matrices += num_agents * in_features * rank * out_features / max(reused, 1)
    return factored <= matrices


def spectral_project(
    x: jax.Array, v: jax.Array, spectra: jax.Array, u: jax.Array, ids: jax.Array | None
) -> jax.Array:
    """X V diag(spectra[a]) Uᵀ for each sample's agent a, without the bias.

    Args:
        x: [B, D], or agent-major [P, N, Q, D].
        v: V [D, R].
        spectra: s ⊙ m_a for every agent, [N, R].
        u: U [O, R].
        ids: the agent of each sample [B]; None for the agent-major layout.

    Returns:
        [B, O] or [P, N, Q, O]; the path is ``factored_is_cheaper``'s choice for these shapes
        (and the loop being traced, ``kernels_reused``).
    """
    in_features, rank = v.shape
    num_agents, out_features = spectra.shape[0], u.shape[0]
    agents = tuple(range(num_agents))
    folded = ids is None and folds_spectra(x.shape, rank)
    if factored_is_cheaper(
        x.size // in_features,
        num_agents,
        in_features,
        out_features,
        rank,
        agent_major=ids is None,
        reused=kernels_reused(),
        folded=folded,
    ):
        projected = flat_matmul(x, v)
        if folded:  # y_i = (x_i V)(diag(s ⊙ m_i) Uᵀ): one batched product over agents
            return apply_group_kernels(projected, spectra[:, :, None] * u.T, ids, agents)
        if ids is None:
            return flat_matmul(scale_by_agent(projected, spectra), u.T)
        return flat_matmul(projected * spectra[ids], u.T)
    kernels = jnp.einsum("dr,nr,or->ndo", v, spectra, u)
    return apply_group_kernels(x, kernels, ids, agents)
