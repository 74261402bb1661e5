"""Learnable per-weight threshold masks on one shared layer: Kaleidoscope's building block.

Mask m keeps thresholds S_m [D, O]; its weight is W_m = sign(W) ⊙ relu(|W| − κ·σ(S_m)) and its
binary mask B_m = 1[|W| − κ·σ(S_m) > 0] (straight-through, backward tanh(upstream)); Li, Pan &
Zhang, NeurIPS 2024. Two users: the Kaleidoscope strategy (``kaleidoscope.py``: one mask per
agent, diversity loss, resets) and MATD3's critic ensemble (``networks/critics.py``: one mask
per ensemble member). Axis glossary: M masks, D input features, O output features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from prism_marl.fast.grouped import apply_group_kernels, sum_as_product
from prism_marl.sharing.base import AgentLayer, Initializer, Variables


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
