"""Kaleidoscope: learnable per-weight masks on shared parameters (Li, Pan & Zhang, NeurIPS 2024).

Mask m of a layer keeps thresholds S_m [D, O]; its weight is W_m = sign(W) ⊙ relu(|W| − κ·σ(S_m))
and its binary mask B_m = 1[|W| − κ·σ(S_m) > 0] (straight-through, backward tanh(upstream)).
κ is 1 in the original. Here it is the layer's initial scale relative to the original's
PyTorch default (``threshold_unit``), so that a threshold prunes the same share of a layer's
initial weights whatever its initialiser (docs/decisions/0035). The masked layer and its math
live in ``masked.py``; this module is the strategy: agents map to masks through a static table
(one mask per agent by default), with the diversity loss, its adaptive coefficient and resets.
Axis glossary: M masks, D input features, O output features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from prism_marl.errors import require
from prism_marl.sharing.base import (
    AuxOutput,
    SharingStrategy,
    Variables,
    map_layers,
    named_layers,
)
from prism_marl.sharing.masked import (
    MaskedDense,
    binary_spread,
    keep_masks,
    pairwise_masked_distance,
    threshold_init,
    threshold_unit,
)

_LAYER_KEYS = frozenset({"kernel", "thresholds"})


class _Layer(NamedTuple):
    """One masked layer's parameters and the buffers that go with them."""

    kernel: jax.Array
    thresholds: jax.Array
    weight: jax.Array  # λ = base^depth
    unit: jax.Array  # κ
    init_std: jax.Array
    depth: jax.Array


def _buffer_at(buffers: Any, path: str) -> Mapping[str, Any]:
    node = buffers
    for key in path.split("/") if path else []:
        node = node.get(key, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


class KaleidoscopeAuxState(NamedTuple):
    """Ring buffers of recent RL and diversity losses for the adaptive coefficient."""

    rl_losses: jax.Array
    diversity_losses: jax.Array
    num_updates: jax.Array


@dataclasses.dataclass(frozen=True)
class Kaleidoscope(SharingStrategy):
    """Learnable per-weight masks with a diversity loss and periodic resets."""

    name = "kaleidoscope"
    layer_class = MaskedDense
    shared_recurrent_input = True  # the original never masks its GRU (``nn.GRUCell``)

    threshold_init_scale: float = 5.0
    """Thresholds start at −(scale · u + offset), u ~ U(0, 1)."""
    threshold_init_offset: float = 5.0
    """See ``threshold_init_scale``."""
    alpha: float = 5.0
    """α of the adaptive diversity coefficient (5.0 SMACv2, 0.5 MPE, 0.1 MaMuJoCo)."""
    loss_history: int = 100
    """Number of recent losses averaged by the adaptive coefficient."""
    diversity_base: float = 2.0
    """Layer l (0-based) weighs its diversity term by base^l (1, 2, 4, 8)."""
    reset_interval: int = 1_000_000
    """Environment steps between resets; 0 turns resets off. None during the last interval."""
    reset_ratio: float = 0.2
    """ρ: probability that a position every mask prunes is reset (0.2 SMACv2, 0.5 MaMuJoCo)."""
    num_masks: int | None = None
    """M; None gives one mask per agent."""
    relative_thresholds: bool = True
    """Scale thresholds by each layer's initial weight scale (``kaleidoscope.threshold_unit``),
    so that orthogonal(0.01) policy heads are pruned at init as little as the original's
    PyTorch-default layers (1–2%); False: the original's absolute σ(S) (decision 0035)."""
    reset_first_layer: bool = False
    """Whether resets reach the network's first layer: not in the SMACv2 original
    (``reset_layers = [fc2, fc3, fc4]``), yes in the MaMuJoCo one (all three layers)."""
    mask_of_agent: tuple[int, ...] | None = None
    """Agent -> mask table (e.g. one mask per unit type); None: agent i uses mask i mod M."""

    def __post_init__(self) -> None:
        require(self.loss_history >= 1, "sharing.loss-history", "must be >= 1")
        require(self.reset_interval >= 0, "sharing.reset-interval", "must be >= 0")
        require(
            0.0 <= self.reset_ratio <= 1.0,
            "sharing.reset-ratio",
            f"must be in [0, 1], got {self.reset_ratio}",
        )
        require(
            self.num_masks is None or self.num_masks >= 1,
            "sharing.num-masks",
            "must be a positive integer or None",
        )
        if self.mask_of_agent is not None:
            masks = sorted(set(self.mask_of_agent))
            require(
                masks == list(range(len(masks))),
                "sharing.mask-of-agent",
                f"mask ids must be 0..M-1 with none unused, got {self.mask_of_agent}",
            )

    def masks_for(self, num_agents: int) -> tuple[int, ...]:
        """The agent -> mask table for N agents."""
        if self.mask_of_agent is not None:
            require(
                len(self.mask_of_agent) == num_agents,
                "sharing.mask-of-agent",
                f"has {len(self.mask_of_agent)} entries for {num_agents} agents",
            )
            return self.mask_of_agent
        num_masks = num_agents if self.num_masks is None else min(self.num_masks, num_agents)
        return tuple(agent % num_masks for agent in range(num_agents))

    def layer_fields(self, num_agents: int) -> dict[str, Any]:
        """The agent -> mask table and the threshold and diversity settings of ``MaskedDense``."""
        return {
            "mask_of_agent": self.masks_for(num_agents),
            "threshold_scale": self.threshold_init_scale,
            "threshold_offset": self.threshold_init_offset,
            "diversity_base": self.diversity_base,
            "relative_thresholds": self.relative_thresholds,
        }

    def _layers(self, variables: Variables) -> list[_Layer]:
        """Every masked layer with its buffers (defaults where a tree has none)."""
        buffers = variables.get("buffers", {})
        layers = []
        for path, layer in named_layers(variables["params"], _LAYER_KEYS):
            own = _buffer_at(buffers, path)
            kernel = layer["kernel"]
            init_std = jnp.asarray(own.get("init_std", jnp.std(kernel)))
            unit = (
                threshold_unit(init_std, kernel.shape[0])
                if self.relative_thresholds and "init_std" in own
                else jnp.ones(())
            )
            layers.append(
                _Layer(
                    kernel,
                    layer["thresholds"],
                    jnp.asarray(own.get("diversity_weight", 1.0)),
                    unit,
                    init_std,
                    jnp.asarray(own.get("depth", 1)),
                )
            )
        return layers

    def diversity(self, variables: Variables) -> dict[str, jax.Array]:
        """Raw diversity D ≥ 0 (L_div = −D), sparsity and mean pairwise mask distance.

        D = Σ_l λ_l Σ_{m≠m'} ‖B_{m,l}⊙|W_l| − B_{m',l}⊙|W_l|‖₁ / (M(M−1) · Σ_l D_l·O_l).
        """
        layers = self._layers(variables)
        if not layers:
            zero = jnp.zeros(())
            return {"diversity": zero, "sparsity": zero, "mask_distance": zero}
        total_size = sum(layer.kernel.size for layer in layers)
        num_masks = layers[0].thresholds.shape[0]
        # A float: with hundreds of agents pairs × size passes int32 (512 agents: 5e10).
        normaliser = float(max(num_masks * (num_masks - 1), 1) * total_size)
        weighted = sum(
            la.weight * pairwise_masked_distance(la.kernel, la.thresholds, la.unit) for la in layers
        )
        keeps = [
            jax.lax.stop_gradient(keep_masks(la.kernel, la.thresholds, la.unit)) for la in layers
        ]
        sparsity = 1.0 - sum(jnp.sum(k) for k in keeps) / (num_masks * total_size)
        disagreement = sum(binary_spread(k, jnp.ones(k.shape[1:], k.dtype)) for k in keeps)
        return {
            "diversity": jnp.asarray(weighted) / normaliser,
            "sparsity": jnp.asarray(sparsity),
            "mask_distance": jnp.asarray(disagreement) / normaliser,
        }

    def init_aux_state(self) -> KaleidoscopeAuxState:
        """Empty loss history."""
        zeros = jnp.zeros((self.loss_history,))
        return KaleidoscopeAuxState(zeros, zeros, jnp.zeros((), jnp.int32))

    def coefficient(self, aux_state: KaleidoscopeAuxState) -> jax.Array:
        """C = |α · mean(recent RL losses) / mean(recent diversity losses)|; 0 with no history."""
        filled = jnp.arange(self.loss_history) < aux_state.num_updates
        count = jnp.maximum(jnp.sum(filled), 1)
        rl_mean = jnp.sum(jnp.where(filled, aux_state.rl_losses, 0.0)) / count
        div_mean = jnp.sum(jnp.where(filled, aux_state.diversity_losses, 0.0)) / count
        ratio = jnp.abs(self.alpha * rl_mean / jnp.where(div_mean == 0, 1.0, div_mean))
        return jnp.where((aux_state.num_updates > 0) & (div_mean != 0), ratio, 0.0)

    def aux_loss(self, variables: Variables, aux_state: Any) -> AuxOutput:
        """C · L_div with L_div = −D and c the adaptive coefficient (stopped)."""
        terms = self.diversity(variables)
        coef = jax.lax.stop_gradient(self.coefficient(aux_state))
        div_loss = -terms["diversity"]
        metrics = {f"kaleidoscope/{k}": v for k, v in terms.items()}
        metrics["kaleidoscope/div_loss"] = div_loss
        metrics["kaleidoscope/coefficient"] = coef
        return AuxOutput(coef * div_loss, metrics)

    def update_aux_state(
        self, aux_state: KaleidoscopeAuxState, rl_loss: jax.Array, aux: AuxOutput
    ) -> KaleidoscopeAuxState:
        """Push the latest RL and diversity losses into the ring buffers."""
        slot = aux_state.num_updates % self.loss_history
        return KaleidoscopeAuxState(
            aux_state.rl_losses.at[slot].set(jax.lax.stop_gradient(rl_loss)),
            aux_state.diversity_losses.at[slot].set(
                jax.lax.stop_gradient(aux.metrics["kaleidoscope/div_loss"])
            ),
            aux_state.num_updates + 1,
        )

    def reset_due(
        self, step_before: jax.Array, step_after: jax.Array, total_steps: int
    ) -> jax.Array:
        """True when a multiple of the interval falls in (before, after], not in the last one."""
        if self.reset_interval == 0:
            return jnp.asarray(False)
        crossed = step_after // self.reset_interval > step_before // self.reset_interval
        return crossed & (step_after <= total_steps - self.reset_interval)

    def maintain(
        self,
        variables: Variables,
        key: jax.Array,
        step_before: jax.Array,
        step_after: jax.Array,
        total_steps: int,
    ) -> Variables:
        """Periodic reset of positions every mask prunes.

        Each such position gets, with probability ρ, fresh thresholds and a fresh weight when
        a reset is due; the first layer (depth 0) only with ``reset_first_layer``. A fresh
        weight is drawn at the scale of the layer's own initialiser, N(0, std(W₀)²): one
        position of an orthogonal kernel cannot be redrawn orthogonally, and the original's
        draw (PyTorch's default, its layers' own initialiser) is likewise per position.
        """
        due = self.reset_due(step_before, step_after, total_steps)
        layers = self._layers(variables)

        def reset_layer(layer: Mapping[str, Any], index: int) -> Mapping[str, Any]:
            kernel, thresholds = layer["kernel"], layer["thresholds"]
            own = layers[index]
            choose_key, threshold_key, weight_key = jax.random.split(
                jax.random.fold_in(key, index), 3
            )
            gate = own.unit * jax.nn.sigmoid(thresholds)
            pruned_by_all = jnp.all(jnp.abs(kernel) <= gate, axis=0)
            chosen = pruned_by_all & (
                jax.random.uniform(choose_key, kernel.shape) < self.reset_ratio
            )
            chosen = chosen & due & (self.reset_first_layer | (own.depth > 0))
            fresh_thresholds = threshold_init(
                self.threshold_init_scale, self.threshold_init_offset
            )(threshold_key, thresholds.shape)
            fresh_kernel = own.init_std * jax.random.normal(weight_key, kernel.shape, kernel.dtype)
            return {
                **layer,
                "kernel": jnp.where(chosen, fresh_kernel, kernel),
                "thresholds": jnp.where(chosen[None], fresh_thresholds, thresholds),
            }

        params = map_layers(variables["params"], _LAYER_KEYS, reset_layer)
        return {**variables, "params": params}

    def per_agent_leaves(self) -> tuple[str, ...]:
        """Thresholds (M·D·O numbers per layer) and any agent-id weights."""
        return ("thresholds", *super().per_agent_leaves())
