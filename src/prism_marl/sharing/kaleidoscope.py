"""Kaleidoscope: learnable per-weight masks on shared parameters (Li, Pan & Zhang, NeurIPS 2024).

Mask m of a layer keeps thresholds S_m [D, O]; its weight is W_m = sign(W) ⊙ relu(|W| − κ·σ(S_m))
and its binary mask B_m = 1[|W| − κ·σ(S_m) > 0] (straight-through, backward tanh(upstream)).
κ is 1 in the original. Here it is the layer's initial scale relative to the original's
PyTorch default (``threshold_unit``), so that a threshold prunes the same share of a layer's
initial weights whatever its initialiser (docs/decisions/0035).
Agents map to masks through a static table (one mask per agent by default).
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
    AgentLayer,
    AuxOutput,
    Initializer,
    SharingStrategy,
    Variables,
    map_layers,
    named_layers,
)
from prism_marl.sharing.grouped import apply_group_kernels, sum_as_product

_LAYER_KEYS = frozenset({"kernel", "thresholds"})


@jax.custom_vjp
def binary_mask(z: jax.Array) -> jax.Array:
    """1[z > 0] forward; backward passes tanh(upstream gradient) (Kaleidoscope's STE)."""
    return (z > 0).astype(z.dtype)


def _binary_mask_fwd(z: jax.Array) -> tuple[jax.Array, None]:
    return binary_mask(z), None


def _binary_mask_bwd(residual: None, upstream: jax.Array) -> tuple[jax.Array]:
    del residual
    return (jnp.tanh(upstream),)


binary_mask.defvjp(_binary_mask_fwd, _binary_mask_bwd)


def soft_threshold(
    kernel: jax.Array, thresholds: jax.Array, unit: jax.Array | float = 1.0
) -> jax.Array:
    """W_m = sign(W) ⊙ relu(|W| − κ·σ(S_m)); kernel [D, O], thresholds [M, D, O] -> [M, D, O].

    κ = ``unit`` (a scalar, not differentiated). Backward, with A_m = 1[|W| > κ·σ(S_m)]
    (where W_m ≠ 0): ∂L/∂W = Σ_m A_m ⊙ G_m and ∂L/∂S_m = −A_m ⊙ sign(W) ⊙ G_m ⊙ κ·σ'(S_m), as
    autodiff gives them, except that the sum over masks runs as a product
    (``grouped.sum_as_product``), not XLA:CPU's slow reduce.
    """
    return _masked_kernels(kernel, thresholds, jnp.asarray(unit, kernel.dtype))


def _soft_threshold(kernel: jax.Array, thresholds: jax.Array, unit: jax.Array) -> jax.Array:
    gate = unit * jax.nn.sigmoid(thresholds)
    return jnp.sign(kernel) * jax.nn.relu(jnp.abs(kernel) - gate)


_masked_kernels = jax.custom_vjp(_soft_threshold)


def _soft_threshold_forward(
    kernel: jax.Array, thresholds: jax.Array, unit: jax.Array
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
    return _soft_threshold(kernel, thresholds, unit), (kernel, thresholds, unit)


def _soft_threshold_backward(
    residuals: tuple[jax.Array, jax.Array, jax.Array], grad: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    kernel, thresholds, unit = residuals
    sigmoid = jax.nn.sigmoid(thresholds)
    kept = jnp.where(jnp.abs(kernel) > unit * sigmoid, grad, 0.0)  # [M, D, O]
    kernel_grad = sum_as_product(kept.reshape(1, kept.shape[0], -1)).reshape(kernel.shape)
    threshold_grad = -kept * jnp.sign(kernel) * unit * sigmoid * (1.0 - sigmoid)
    # κ is a fixed buffer: its cotangent is never read.
    return kernel_grad, threshold_grad, jnp.zeros_like(unit)


_masked_kernels.defvjp(_soft_threshold_forward, _soft_threshold_backward)


def keep_masks(
    kernel: jax.Array, thresholds: jax.Array, unit: jax.Array | float = 1.0
) -> jax.Array:
    """B_m = 1[|W| − κ·σ(S_m) > 0] with |W| stopped; [M, D, O]."""
    gate = unit * jax.nn.sigmoid(thresholds)
    return binary_mask(jax.lax.stop_gradient(jnp.abs(kernel)) - gate)


def threshold_unit(init_std: jax.Array, fan_in: int) -> jax.Array:
    """κ = the layer's initial weight scale over the original's, std(W₀) · √(3·D).

    The original's layers start from PyTorch's default U(±1/√D) (std 1/√(3D)), against which
    its threshold initialisation prunes 1–2% of the weights; κ = 1 for such a layer.
    """
    return init_std * jnp.sqrt(3.0 * fan_in)


def threshold_init(scale: float, offset: float) -> Initializer:
    """S = −(scale · u + offset), u ~ U(0, 1): almost nothing pruned at first."""

    def init(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        return -(scale * jax.random.uniform(key, shape) + offset)

    return init


@jax.custom_vjp
def binary_spread(keep: jax.Array, magnitude: jax.Array) -> jax.Array:
    """Σ_{m≠m'} ‖B_m ⊙ A − B_m' ⊙ A‖₁ for binary masks B [M, D, O] and A ≥ 0 [D, O] (scalar).

    At a position kept by k of the M masks the M·(M−1) ordered pairs hold k·(M−k) pairs
    (A, 0) and as many (0, A), so the sum is Σ_{d,o} 2·k·(M−k)·A: O(M·D·O) memory, not the
    [M, M, D, O] of the pairwise form, which stopped Kaleidoscope at 128 agents (13.5 GiB).
    The backward pass is the pairwise form's autodiff gradient exactly, ties included
    (d|x|/dx = sign(x), 0 at 0): ∂/∂B_m = 2·A·(M−k) where B_m = 1 and −2·A·k where B_m = 0;
    ∂/∂A = 2·k·(M−k). (The smooth 2·A·(M−2k) of the closed form would differ; with
    Kaleidoscope's tanh straight-through estimator the exact upstream value matters.)
    Requires every entry of B to be exactly 0 or 1.
    """
    kept = jnp.sum(keep, axis=0)
    return jnp.sum(2.0 * kept * (keep.shape[0] - kept) * magnitude)


def _binary_spread_fwd(
    keep: jax.Array, magnitude: jax.Array
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return binary_spread(keep, magnitude), (keep, magnitude)


def _binary_spread_bwd(
    residuals: tuple[jax.Array, jax.Array], upstream: jax.Array
) -> tuple[jax.Array, jax.Array]:
    keep, magnitude = residuals
    num_masks = keep.shape[0]
    kept = jnp.sum(keep, axis=0)
    # Σ_m' sign(a_m − a_m') counts the masks on the other side of a_m ∈ {0, A}.
    signs = keep * (num_masks - kept) - (1.0 - keep) * kept
    keep_grad = upstream * 2.0 * signs * magnitude
    magnitude_grad = upstream * 2.0 * kept * (num_masks - kept)
    return keep_grad, magnitude_grad


binary_spread.defvjp(_binary_spread_fwd, _binary_spread_bwd)


def pairwise_masked_distance(
    kernel: jax.Array, thresholds: jax.Array, unit: jax.Array | float = 1.0
) -> jax.Array:
    """Σ_{m≠m'} ‖B_m ⊙ |W| − B_m' ⊙ |W|‖₁ for one layer (scalar), |W| stopped.

    kernel [D, O], thresholds [M, D, O]. Only the thresholds get this term's gradient, as in
    the original (``_get_weighted_masks`` detaches the weight): with |W| differentiated, the
    adaptive coefficient, which grows as the distance falls, would push the shared kernel
    without bound. Computed by ``binary_spread`` in O(M·D·O) memory.
    """
    keep = keep_masks(kernel, thresholds, unit)
    return binary_spread(keep, jax.lax.stop_gradient(jnp.abs(kernel)))


class MaskedDense(AgentLayer):
    """Shared dense layer with learnable per-weight thresholds per mask.

    Parameters: kernel [D, O], bias [O] (shared, unmasked), thresholds [M, D, O].
    Buffers: diversity_weight, λ = base^depth (the depth weighting of the diversity loss);
    init_std, the standard deviation of the kernel drawn at initialisation (the scale of
    reset weights and, with ``relative_thresholds``, of the thresholds); depth.
    """

    mask_of_agent: tuple[int, ...] = ()
    threshold_scale: float = 5.0
    threshold_offset: float = 5.0
    diversity_base: float = 2.0
    relative_thresholds: bool = False
    """Thresholds κ·σ(S) with κ from ``threshold_unit``; False: σ(S) as in the original."""

    def unit(self, init_std: jax.Array, fan_in: int) -> jax.Array:
        """κ of this layer (1 unless ``relative_thresholds``)."""
        if not self.relative_thresholds:
            return jnp.ones((), init_std.dtype)
        return threshold_unit(init_std, fan_in)

    @property
    def num_masks(self) -> int:
        """M."""
        return max(self.mask_of_agent) + 1

    def project(self, x: jax.Array, ids: jax.Array | None) -> jax.Array:
        """X [B, D] -> [B, O] (or [B, N, D] -> [B, N, O]) through each sample's masked weight."""
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        thresholds = self.param(
            "thresholds",
            threshold_init(self.threshold_scale, self.threshold_offset),
            (self.num_masks, x.shape[-1], self.features),
        )
        self.variable(
            "buffers",
            "diversity_weight",
            lambda: jnp.asarray(self.diversity_base**self.depth, jnp.float32),
        )
        # Read at initialisation only: the scale of the layer's own initialiser, kept fixed.
        init_std = self.variable("buffers", "init_std", lambda: jnp.std(kernel)).value
        self.variable("buffers", "depth", lambda: jnp.asarray(self.depth, jnp.int32))
        masked = soft_threshold(kernel, thresholds, self.unit(init_std, x.shape[-1]))
        return apply_group_kernels(x, masked, ids, self.mask_of_agent) + bias

    def kernel_and_bias(self, variables: Variables, agent: int) -> tuple[jax.Array, jax.Array]:
        params = variables["params"]
        mask = self.mask_of_agent[agent]
        kernel = params["kernel"]
        unit = self.unit(variables["buffers"]["init_std"], kernel.shape[0])
        masked = soft_threshold(kernel, params["thresholds"][mask : mask + 1], unit)
        return masked[0], params["bias"]


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
