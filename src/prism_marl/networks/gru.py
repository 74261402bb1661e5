"""A GRU unrolled over time with a hand-written backward pass (custom VJP).

Equations (Cho et al., 2014; PyTorch's gate layout), for one step with the input projections
``a = W_i x + b_i`` [B, 3H] computed for every step beforehand and the recurrent projection
``c = layer(h)`` [B, 3H] (a strategy layer, so possibly per agent):

    r = σ(a_r + c_r),  z = σ(a_z + c_z),  n = tanh(a_n + r ⊙ c_n),  h' = (1 − z) ⊙ n + z ⊙ h

where h is zeroed first where an episode starts. With a state mask m (SNP's pruned units),
h' ← m ⊙ h', so a pruned unit's state stays zero and feeds nothing. The backward pass, from
g = ∂L/∂h' (the step's own cotangent plus the one carried back from step t + 1):

    ∂n = g ⊙ (1 − z),  ∂a_n = ∂n ⊙ (1 − n²),  ∂c_n = ∂a_n ⊙ r,
    ∂a_r = ∂c_r = ∂a_n ⊙ c_n ⊙ r ⊙ (1 − r),  ∂a_z = ∂c_z = g ⊙ (h − n) ⊙ z ⊙ (1 − z),
    ∂h = g ⊙ z + layerᵀ(∂c), then zeroed where the step reset the state,

with g ← m ⊙ g first under a state mask.

Why not let JAX differentiate the scan (docs/decisions/0024): XLA:CPU emits the fused gate
arithmetic of a scan step as scalar code when it slices gates out of a per-step slice of the
scanned [T, B, 3H] input (about 8× slower than the same arithmetic on three scanned [T, B, H]
arrays, measured alone), and the transposed scan accumulates the recurrent kernel's gradient
at every step. Here the forward loop reads the three gates as separate scanned arrays, the
backward loop only carries ∂h, and the layer's parameter gradient is one vector-Jacobian
product over all T·B recorded states.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from prism_marl.fast.loops import reused_kernels

RecurrentLayer = Callable[[Any, jax.Array, Any], jax.Array]
"""``layer(variables, h [..., H], ids) -> [..., 3H]``: the recurrent projection, pure."""


class Gates(NamedTuple):
    """One step's saved activations, each [B, H] (stacked [T, B, H] over the unroll)."""

    hidden: jax.Array  # h after the reset, the step's input state
    reset: jax.Array  # r
    update: jax.Array  # z
    candidate: jax.Array  # n
    recurrent_n: jax.Array  # c_n


def gru_step(
    from_input: tuple[jax.Array, jax.Array, jax.Array], from_hidden: jax.Array, hidden: jax.Array
) -> tuple[jax.Array, Gates]:
    """One step: (new hidden state, gates) from (a_r, a_z, a_n), c [B, 3H] and h [B, H]."""
    input_r, input_z, input_n = from_input
    hidden_r, hidden_z, hidden_n = jnp.split(from_hidden, 3, axis=-1)
    reset = jax.nn.sigmoid(input_r + hidden_r)
    update = jax.nn.sigmoid(input_z + hidden_z)
    candidate = jnp.tanh(input_n + reset * hidden_n)
    new_hidden = (1.0 - update) * candidate + update * hidden
    return new_hidden, Gates(hidden, reset, update, candidate, hidden_n)


def _forward(
    layer: RecurrentLayer,
    variables: Any,
    from_input: jax.Array,
    ids: Any,
    starts: jax.Array,
    hidden: jax.Array,
    mask: jax.Array | None,
) -> tuple[jax.Array, Gates]:
    """Hidden states after every step [T, B, H] and the gates of every step."""
    # Three scanned arrays, not one [T, B, 3H] sliced inside the loop (module docstring).
    parts = tuple(jnp.split(from_input, 3, axis=-1))

    def step(h: jax.Array, xs: Any) -> tuple[jax.Array, tuple[jax.Array, Gates]]:
        gates_in, ids_t, start, mask_t = xs
        h = jnp.where(start[..., None], jnp.zeros_like(h), h)
        new, gates = gru_step(gates_in, layer(variables, h, ids_t), h)
        if mask_t is not None:
            new = new * mask_t
        return new, (new, gates)

    with reused_kernels(from_input.shape[0]):
        _, (hiddens, gates) = jax.lax.scan(step, hidden, (parts, ids, starts, mask))
    return hiddens, gates


def _backward(
    layer: RecurrentLayer,
    variables: Any,
    ids: Any,
    starts: jax.Array,
    mask: jax.Array | None,
    gates: Gates,
    g: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(∂a [T, B, 3H], ∂c [T, B, 3H], ∂h₀ [B, H]) from the cotangents g [T, B, H]."""

    def step(carried: jax.Array, xs: Any) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        g_t, ids_t, start, mask_t, saved = xs
        grad = carried + g_t
        if mask_t is not None:
            grad = grad * mask_t
        d_candidate = grad * (1.0 - saved.update) * (1.0 - saved.candidate * saved.candidate)
        d_update = grad * (saved.hidden - saved.candidate) * saved.update * (1.0 - saved.update)
        d_reset = d_candidate * saved.recurrent_n * saved.reset * (1.0 - saved.reset)
        d_input = jnp.concatenate([d_reset, d_update, d_candidate], axis=-1)
        d_hidden = jnp.concatenate([d_reset, d_update, d_candidate * saved.reset], axis=-1)
        _, transpose = jax.vjp(lambda h: layer(variables, h, ids_t), saved.hidden)
        back = grad * saved.update + transpose(d_hidden)[0]
        return jnp.where(start[..., None], jnp.zeros_like(back), back), (d_input, d_hidden)

    with reused_kernels(g.shape[0]):
        initial = jnp.zeros_like(g[0])
        d_h0, (d_input, d_hidden) = jax.lax.scan(
            step, initial, (g, ids, starts, mask, gates), reverse=True
        )
    return d_input, d_hidden, d_h0


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def gru_unroll(
    layer: RecurrentLayer,
    variables: Any,
    from_input: jax.Array,
    ids: Any,
    starts: jax.Array,
    hidden: jax.Array,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Hidden state after every step, [T, B, H].

    Args:
        layer: the recurrent projection ``layer(variables, h, ids_t)``, affine in h.
        variables: its variables (differentiated: the ``params``; other collections get a
            cotangent nobody reads).
        from_input: the input projections a = W_i x + b_i of every step, [T, B, 3H].
        ids: whatever ``layer`` takes per step, scanned over its leading T axis (a dummy
            [T] array when the layer closes over static ids).
        starts: True where an episode starts (h is zeroed before that step), [T, B].
        hidden: the state before the first step, [B, H].
        mask: None, or a multiplicative mask on every step's new state, [T, B, H] (SNP's
            per-agent unit masks; not differentiated).

    B may be several axes. Differentiable in ``variables``, ``from_input`` and ``hidden``.
    """
    return _forward(layer, variables, from_input, ids, starts, hidden, mask)[0]


def _unroll_forward(
    layer: RecurrentLayer,
    variables: Any,
    from_input: jax.Array,
    ids: Any,
    starts: jax.Array,
    hidden: jax.Array,
    mask: jax.Array | None = None,
) -> tuple[jax.Array, tuple[Any, Any, jax.Array, jax.Array | None, Gates]]:
    hiddens, gates = _forward(layer, variables, from_input, ids, starts, hidden, mask)
    return hiddens, (variables, ids, starts, mask, gates)


def _unroll_backward(
    layer: RecurrentLayer,
    residuals: tuple[Any, Any, jax.Array, jax.Array | None, Gates],
    g: jax.Array,
) -> tuple[Any, jax.Array, None, None, jax.Array, None]:
    variables, ids, starts, mask, gates = residuals
    d_input, d_hidden, d_h0 = _backward(layer, variables, ids, starts, mask, gates, g)
    # The layer's parameter gradient once, over every recorded state, not at each step.
    _, transpose = jax.vjp(lambda v: layer(v, gates.hidden, ids), variables)
    (d_variables,) = transpose(d_hidden)
    return d_variables, d_input, None, None, d_h0, None


gru_unroll.defvjp(_unroll_forward, _unroll_backward)
