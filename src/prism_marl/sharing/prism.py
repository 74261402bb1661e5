"""Prism: spectral parameter sharing (Kim, Oh & Kim, arXiv 2602.06476, 2026).

A shared layer is held as W = U diag(s) Vᵀ; agent i uses W_i = U diag(s ⊙ m_i) Vᵀ with its own
spectral mask m_i (r numbers per agent). Formulas: ``docs/method.md`` §1.
Axis glossary: B samples, N agents, R rank, D input features, O output features.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from prism_marl.errors import require
from prism_marl.sharing.base import (
    AgentLayer,
    AuxOutput,
    Initializer,
    SharingStrategy,
    Variables,
    find_layers,
    kernels_reused,
    map_layers,
    named_layers,
)
from prism_marl.sharing.grouped import (
    GATHER_COST_FACTOR,
    apply_group_kernels,
    flat_matmul,
    scale_by_agent,
    use_gather,
)
from prism_marl.sharing.spectral import (
    DiversityOn,
    MaskKind,
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

_LAYER_KEYS = frozenset({"U", "V", "s", "mask_logits"})


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


class SpectralDense(AgentLayer):
    """Agent-indexed spectral layer: y = ((x V) ⊙ (s ⊙ m_a)) Uᵀ + b.

    Parameters: U [O, R], V [D, R], s [R], bias [O] (shared); mask_logits [N, R] (per agent).
    Initialised from the SVD of a dense kernel drawn with ``kernel_init``, so that with all
    masks equal to 1 the layer equals that dense layer (at full rank). With
    ``scaled_spectrum`` the stored ``s`` is ŝ and s = κ·ŝ, κ = √(D·O/R)
    (``spectral.spectrum_gain``).
    """

    rank: int | None = None
    mask_kind: MaskKind = "sigmoid"
    mask_init_mean: float = 2.0
    mask_init_noise: float = 0.5
    scaled_spectrum: bool = True

    def layer_rank(self, in_features: int) -> int:
        """R = min(rank, D, O); full rank when ``rank`` is None."""
        full = min(in_features, self.features)
        return full if self.rank is None else min(self.rank, full)

    def project(self, x: jax.Array, ids: jax.Array | None) -> jax.Array:
        """X [B, D] -> [B, O] (or [B, N, D] -> [B, N, O]), factored or per-agent matrices.

        The cheaper path under ``factored_is_cheaper``'s FLOP model, chosen from static shapes.
        """
        in_features = x.shape[-1]
        rank = self.layer_rank(in_features)
        # U, s and V must come from one SVD, so they share one key; flax also traces each
        # initialiser abstractly during apply (shape check), where no rng exists.
        svd_key = self.make_rng("params") if self.is_initializing() else jax.random.key(0)

        gain = spectrum_gain(self.features, in_features, rank) if self.scaled_spectrum else 1.0

        def factor(index: int) -> Initializer:
            def init(_: jax.Array) -> jax.Array:
                dense = self.kernel_init(svd_key, (in_features, self.features))
                value = spectral_init(dense, rank)[index]
                return value / gain if index == 1 else value

            return init

        u = self.param("U", factor(0))
        s = self.param("s", factor(1)) * gain
        v = self.param("V", factor(2))
        bias = self.param("bias", self.bias_init, (self.features,))

        def logits_init(key: jax.Array, shape: tuple[int, int]) -> jax.Array:
            return self.mask_init_mean + self.mask_init_noise * jax.random.normal(key, shape)

        logits = self.param("mask_logits", logits_init, (self.num_agents, rank))
        spectra = s * mask_values(logits, self.mask_kind)  # [N, R]
        samples = x.size // in_features
        agents = tuple(range(self.num_agents))
        folded = ids is None and folds_spectra(x.shape, rank)
        if factored_is_cheaper(
            samples,
            self.num_agents,
            in_features,
            self.features,
            rank,
            agent_major=ids is None,
            reused=kernels_reused(),
            folded=folded,
        ):
            projected = flat_matmul(x, v)
            if folded:  # y_i = (x_i V)(diag(s ⊙ m_i) Uᵀ): one batched product over agents
                return apply_group_kernels(projected, spectra[:, :, None] * u.T, ids, agents) + bias
            if ids is None:
                return flat_matmul(scale_by_agent(projected, spectra), u.T) + bias
            return flat_matmul(projected * spectra[ids], u.T) + bias
        kernels = jnp.einsum("dr,nr,or->ndo", v, spectra, u)
        return apply_group_kernels(x, kernels, ids, agents) + bias

    def kernel_and_bias(self, variables: Variables, agent: int) -> tuple[jax.Array, jax.Array]:
        p = variables["params"]
        s = singular_values(p, self.scaled_spectrum)
        spectrum = s * mask_values(p["mask_logits"][agent], self.mask_kind)
        return (p["V"] * spectrum) @ p["U"].T, p["bias"]


@dataclasses.dataclass(frozen=True)
class Prism(SharingStrategy):
    """Spectral parameter sharing with per-agent masks on the singular values."""

    name = "prism"
    layer_class = SpectralDense

    rank: int | None = None
    """Spectral rank R per layer (capped at min(D, O)); None is full rank."""
    mask: MaskKind = "sigmoid"
    """Mask form: sigmoid (m = σ(ℓ)), hard (1[ℓ > 0], straight-through) or scale (m = ℓ)."""
    mask_init_mean: float | None = None
    """ℓ_0, the mean initial mask logit; None gives 2.0 (sigmoid, hard) or 1.0 (scale)."""
    mask_init_noise: float = 0.5
    """σ_0: symmetry-breaking noise on the initial mask logits."""
    lambda_div: float = 0.1
    """Weight of the diversity regulariser (0 turns it off); see docs/decisions/0003."""
    lambda_orth: float = 0.01
    """Weight of the orthogonality regulariser (0 turns it off)."""
    diversity_on: DiversityOn = "masks"
    """Distance between masks, or between spectra s ⊙ m (weighted by |s|)."""
    spectral_gru: bool = False
    """Make a GRU's recurrent kernels spectral too (shared plain kernels otherwise)."""
    scaled_spectrum: bool = True
    """Train ŝ with s = κ·ŝ, κ = √(D·O/R), so an optimiser step on s moves W as far as a
    dense layer's step (docs/decisions/0034); False trains s itself."""
    renormalise: bool = False
    """After each update, move the norms of U's and V's columns into s (every W_i unchanged)."""

    def __post_init__(self) -> None:
        require(
            self.rank is None or self.rank >= 1,
            "sharing.rank",
            f"must be a positive integer or None, got {self.rank}",
        )
        require(
            self.mask in ("sigmoid", "hard", "scale"),
            "sharing.mask",
            f"must be one of sigmoid, hard, scale; got {self.mask!r}",
        )
        require(
            self.diversity_on in ("masks", "spectra"),
            "sharing.diversity-on",
            f"must be one of masks, spectra; got {self.diversity_on!r}",
        )
        require(self.mask_init_noise >= 0, "sharing.mask-init-noise", "must be >= 0")
        require(self.lambda_div >= 0, "sharing.lambda-div", "must be >= 0")
        require(self.lambda_orth >= 0, "sharing.lambda-orth", "must be >= 0")

    @property
    def initial_logit(self) -> float:
        """ℓ_0 after resolving the default for the mask kind."""
        if self.mask_init_mean is not None:
            return self.mask_init_mean
        return 1.0 if self.mask == "scale" else 2.0

    def layer_fields(self, num_agents: int) -> dict[str, Any]:
        """Rank, mask kind and mask initialisation of ``SpectralDense``."""
        del num_agents
        return {
            "rank": self.rank,
            "mask_kind": self.mask,
            "mask_init_mean": self.initial_logit,
            "mask_init_noise": self.mask_init_noise,
            "scaled_spectrum": self.scaled_spectrum,
        }

    @property
    def shared_recurrent(self) -> bool:
        """Plain shared recurrent kernels unless ``spectral_gru``."""
        return not self.spectral_gru

    def regularisers(self, variables: Variables) -> dict[str, jax.Array]:
        """Orthogonality (summed over layers), diversity D (mean over layers), effective ranks.

        Returns a dict with ``orth`` (scalar), ``diversity`` (scalar, mean pairwise mask
        distance in [0, 1], in its scale-invariant form for ``scale`` masks) and
        ``effective_rank_per_agent`` ([N], mean over layers).
        """
        layers = find_layers(variables["params"], _LAYER_KEYS)
        if not layers:
            zero = jnp.zeros(())
            return {"orth": zero, "diversity": zero, "effective_rank_per_agent": zero[None]}
        orth = sum(orthogonality_penalty(la["U"], la["V"]) for la in layers)
        distances, ranks = [], []
        for layer in layers:
            masks = mask_values(layer["mask_logits"], self.mask)
            s = singular_values(layer, self.scaled_spectrum)
            weights = s if self.diversity_on == "spectra" else None
            # Scale masks are unbounded, so their distance must not grow with their size
            # (docs/decisions/0017); sigmoid and hard masks keep the plain form.
            distances.append(
                mean_pairwise_distance(masks, weights, scale_invariant=self.mask == "scale")
            )
            ranks.append(effective_rank(s * masks))
        return {
            "orth": jnp.asarray(orth),
            "diversity": jnp.mean(jnp.stack(distances)),
            "effective_rank_per_agent": jnp.mean(jnp.stack(ranks), axis=0),
        }

    def aux_loss(self, variables: Variables, aux_state: Any) -> AuxOutput:
        """λ_div · L_div + λ_orth · L_orth, with L_div = −mean over layers of D."""
        del aux_state
        terms = self.regularisers(variables)
        loss = -self.lambda_div * terms["diversity"] + self.lambda_orth * terms["orth"]
        ranks = terms["effective_rank_per_agent"]
        metrics = {
            "prism/orth": terms["orth"],
            "prism/mask_distance": terms["diversity"],
            "prism/effective_rank": jnp.mean(ranks),
            "prism/effective_rank_min": jnp.min(ranks),
            "prism/effective_rank_per_agent": ranks,
        }
        return AuxOutput(loss, metrics)

    def weight_diagnostics(self, params: Any) -> dict[str, jax.Array]:
        """Per spectral layer: ``s_max`` and ``s_mean`` of s ⊙ m_i and ``kernel_norm`` ‖W_i‖_F.

        Each is the mean over agents; plain kernels (GRU, critics) as the base reports them.
        """
        metrics = super().weight_diagnostics(params)
        for path, layer in named_layers(params, _LAYER_KEYS):
            spectra = singular_values(layer, self.scaled_spectrum) * mask_values(
                layer["mask_logits"], self.mask
            )  # [N, R]
            magnitudes = jnp.abs(spectra)
            metrics[f"weights/{path}/s_max"] = jnp.mean(jnp.max(magnitudes, axis=-1))
            metrics[f"weights/{path}/s_mean"] = jnp.mean(magnitudes)
            norms = kernel_norms(layer["U"], layer["V"], spectra)
            metrics[f"weights/{path}/kernel_norm"] = jnp.mean(norms)
        return metrics

    def maintain(
        self,
        variables: Variables,
        key: jax.Array,
        step_before: jax.Array,
        step_after: jax.Array,
        total_steps: int,
    ) -> Variables:
        """With ``renormalise``, U's and V's column norms move into s; identity otherwise.

        Every agent's W_i = U diag(s ⊙ m_i) Vᵀ is unchanged (``spectral.renormalise_factors``).
        """
        del key, step_before, step_after, total_steps
        if not self.renormalise:
            return variables

        def unit_columns(layer: Any, index: int) -> dict[str, Any]:
            del index
            u, v, s = renormalise_factors(layer["U"], layer["V"], layer["s"])
            return {**layer, "U": u, "V": v, "s": s}

        return {**variables, "params": map_layers(variables["params"], _LAYER_KEYS, unit_columns)}

    def agent_masks(self, variables: Variables) -> dict[str, jax.Array]:
        """m_i of every spectral layer, ``{"layer i": [N, R]}`` in parameter-tree order."""
        layers = find_layers(variables["params"], _LAYER_KEYS)
        return {
            f"layer {i}": mask_values(layer["mask_logits"], self.mask)
            for i, layer in enumerate(layers)
        }

    def per_agent_leaves(self) -> tuple[str, ...]:
        """Mask logits (R numbers per agent and layer) and any agent-id weights."""
        return ("mask_logits", *super().per_agent_leaves())
