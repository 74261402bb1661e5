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
from prism_marl.fast.spectral import spectral_project
from prism_marl.sharing.base import (
    AgentLayer,
    AuxOutput,
    Initializer,
    SharingStrategy,
    Variables,
    find_layers,
    map_layers,
    named_layers,
)
from prism_marl.sharing.spectral import (
    DiversityOn,
    MaskKind,
    Regularise,
    direction_gains,
    effective_rank,
    factor_gains,
    factors,
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


class SpectralDense(AgentLayer):
    """Agent-indexed spectral layer: y = ((x V) ⊙ (s ⊙ m_a)) Uᵀ + b.

    Parameters: U [O, R], V [D, R], s [R], bias [O] (shared); mask_logits [N, R] (per agent).
    Initialised from the SVD of a dense kernel drawn with ``kernel_init``, so that with all
    masks equal to 1 the layer equals that dense layer (at full rank). With
    ``scaled_spectrum`` the stored ``s`` is ŝ and s = κ·ŝ, κ = √(D·O/R)
    (``spectral.spectrum_gain``); with ``scaled_directions`` the stored U, V are Û, V̂ and
    U = √D·Û, V = √O·V̂ (``spectral.direction_gains``).
    """

    rank: int | None = None
    mask_kind: MaskKind = "sigmoid"
    mask_init_mean: float = 2.0
    mask_init_noise: float = 0.5
    scaled_spectrum: bool = True
    scaled_directions: bool = False

    def layer_rank(self, in_features: int) -> int:
        """R = min(rank, D, O); full rank when ``rank`` is None."""
        full = min(in_features, self.features)
        return full if self.rank is None else min(self.rank, full)

    def project(self, x: jax.Array, ids: jax.Array | None) -> jax.Array:
        """X [B, D] -> [B, O] (or agent-major [P, N, Q, D] -> [P, N, Q, O]).

        y_a = x V diag(s ⊙ m_a) Uᵀ + b, computed by ``fast.spectral.spectral_project``, which
        picks factored products or per-agent matrices from static shapes; the reference is
        ``kernel_and_bias``.
        """
        in_features = x.shape[-1]
        rank = self.layer_rank(in_features)
        # U, s and V must come from one SVD, so they share one key; flax also traces each
        # initialiser abstractly during apply (shape check), where no rng exists.
        svd_key = self.make_rng("params") if self.is_initializing() else jax.random.key(0)

        gain = spectrum_gain(self.features, in_features, rank) if self.scaled_spectrum else 1.0
        gain_u, gain_v = (
            direction_gains(self.features, in_features) if self.scaled_directions else (1.0, 1.0)
        )
        gains = (gain_u, gain, gain_v)  # U, s, V are stored divided by their gains

        def factor(index: int) -> Initializer:
            def init(_: jax.Array) -> jax.Array:
                dense = self.kernel_init(svd_key, (in_features, self.features))
                return spectral_init(dense, rank)[index] / gains[index]

            return init

        u = self.param("U", factor(0)) * gain_u
        s = self.param("s", factor(1)) * gain
        v = self.param("V", factor(2)) * gain_v
        bias = self.param("bias", self.bias_init, (self.features,))

        def logits_init(key: jax.Array, shape: tuple[int, int]) -> jax.Array:
            return self.mask_init_mean + self.mask_init_noise * jax.random.normal(key, shape)

        logits = self.param("mask_logits", logits_init, (self.num_agents, rank))
        spectra = s * mask_values(logits, self.mask_kind)  # [N, R]
        return spectral_project(x, v, spectra, u, ids) + bias

    def kernel_and_bias(self, variables: Variables, agent: int) -> tuple[jax.Array, jax.Array]:
        p = variables["params"]
        s = singular_values(p, self.scaled_spectrum)
        spectrum = s * mask_values(p["mask_logits"][agent], self.mask_kind)
        u, v = factors(p, self.scaled_directions)
        return (v * spectrum) @ u.T, p["bias"]


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
    scaled_directions: bool = False
    """Train Û, V̂ with U = √D·Û and V = √O·V̂, so Adam turns the singular directions about as
    fast as a dense kernel's (``spectral.direction_gains``; a probe, docs/decisions/0054)."""
    regularise: Regularise = "loss"
    """Where the two regularisers act: ``loss`` adds them to the RL loss, so the optimiser
    (Adam) normalises their sum; ``decoupled`` takes Adam's step on the RL loss alone and then
    a plain gradient step θ ← θ − ∇(λ_div·L_div + λ_orth·L_orth), as AdamW decouples weight
    decay, so each term's strength is set by its λ, not by the RL gradient's scale
    (docs/decisions/0054)."""

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
        require(
            self.regularise in ("loss", "decoupled"),
            "sharing.regularise",
            f"must be one of loss, decoupled; got {self.regularise!r}",
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
            "scaled_directions": self.scaled_directions,
        }

    @property
    def shared_recurrent(self) -> bool:
        """Plain shared recurrent kernels unless ``spectral_gru``."""
        return not self.spectral_gru

    @property
    def decoupled_aux(self) -> bool:
        """True with ``regularise = "decoupled"``."""
        return self.regularise == "decoupled"

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
        orth = sum(orthogonality_penalty(*factors(la, self.scaled_directions)) for la in layers)
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
            norms = kernel_norms(*factors(layer, self.scaled_directions), spectra)
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
            gain_u, gain_v = factor_gains(layer, self.scaled_directions)
            u, v, s = renormalise_factors(*factors(layer, self.scaled_directions), layer["s"])
            return {**layer, "U": u / gain_u, "V": v / gain_v, "s": s}

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
