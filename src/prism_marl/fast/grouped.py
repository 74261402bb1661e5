"""Per-group dense products: the shared kernel of NoPS, SePS, Kaleidoscope and Prism's matrix path.

Axis glossary: B samples (all leading axes flattened), G groups (agents, clusters or masks),
D input features, O output features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# A per-sample product with gathered kernels reads B·D·O weights from memory instead of
# streaming one kernel through BLAS; on CPU it runs several times slower per FLOP, so it only
# wins when the alternative multiplies every sample by every group's kernel (G·B·D·O).
GATHER_COST_FACTOR = 4


def flat_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """X @ kernel as one 2-D product: [..., D] @ [D, O] -> [..., O].

    Same numbers as ``x @ kernel``; flattening the leading axes first matters on XLA CPU,
    where a product with several free axes (and its kernel gradient, which contracts them all)
    runs about 1.7x slower under ``vmap`` (measured on a 12 -> 64 -> 64 -> 6 MLP gradient).
    """
    flat = x.reshape(-1, x.shape[-1]) @ kernel
    return flat.reshape(*x.shape[:-1], kernel.shape[-1])


def use_gather(num_groups: int) -> bool:
    """Whether gathering one kernel per sample is cheaper than multiplying by all G kernels.

    Cost model (static, from shapes): all-groups = G·B·D·O, gather = 4·B·D·O; B, D and O
    cancel, so the choice depends on G alone.
    """
    return num_groups > GATHER_COST_FACTOR


def grouped_matmul(x: jax.Array, kernels: jax.Array, groups: jax.Array) -> jax.Array:
    """y_b = x_b @ kernels[groups_b].

    Args:
        x: [B, D].
        kernels: [G, D, O].
        groups: [B] int, values in [0, G).

    Returns:
        [B, O]. For G = 1 this is a plain matmul; otherwise the cheaper of gathering
        per-sample kernels and selecting from all groups' outputs (``use_gather``).
    """
    num_groups = kernels.shape[0]
    if num_groups == 1:
        return flat_matmul(x, kernels[0])
    if use_gather(num_groups):
        return jnp.einsum("bd,bdo->bo", x, kernels[groups])
    every_group = jnp.einsum("bd,gdo->bgo", x, kernels)
    return jnp.take_along_axis(every_group, groups[:, None, None], axis=1)[:, 0]


def agent_matmul(
    x: jax.Array, kernels: jax.Array, group_of_agent: np.ndarray | jax.Array
) -> jax.Array:
    """y[p, n, q] = x[p, n, q] @ kernels[group_of_agent[n]] for agent-major input.

    Args:
        x: [P, N, Q, D], agent n's samples in x[:, n].
        kernels: [G, D, O].
        group_of_agent: [N] table of groups: static (numpy), or traced (a per-seed buffer,
            SePS's clusters), which gathers the N kernels at run time.

    Returns:
        [P, N, Q, O]: one batched product over the agent axis, P·N·Q·D·O FLOPs whatever G is
        (the per-sample path pays G times that, or a gather, because its ids are only known at
        run time). With the agent axis leading (P = 1) every agent's block is contiguous.
    """
    if kernels.shape[0] == 1:
        return flat_matmul(x, kernels[0])
    per_agent = (
        kernels if is_identity(group_of_agent, kernels.shape[0]) else kernels[group_of_agent]
    )
    # XLA CPU runs a batched product fastest with the batch (agent) axis leading and one free
    # axis; any other layout makes it transpose activations and their gradients in slower
    # ways (measured on an MLP gradient under vmap: a unit axis ahead of the agents cost 2.9x,
    # agents between samples 1.5x; the explicit transposes below leave 1.1x).
    num_agents, rows = x.shape[1], x.shape[0] * x.shape[2]
    agents_first = x[0] if x.shape[0] == 1 else jnp.moveaxis(x, 1, 0)
    y = jnp.einsum("nbd,ndo->nbo", agents_first.reshape(num_agents, rows, x.shape[-1]), per_agent)
    y = y.reshape(num_agents, x.shape[0], x.shape[2], -1)
    return jnp.moveaxis(y, 0, 1)


def is_identity(group_of_agent: np.ndarray | jax.Array, num_groups: int) -> bool:
    """Whether a static table maps agent n to group n (NoPS); a traced table never is."""
    return isinstance(group_of_agent, np.ndarray) and np.array_equal(
        group_of_agent, np.arange(num_groups)
    )


def apply_group_kernels(
    x: jax.Array,
    kernels: jax.Array,
    ids: jax.Array | None,
    group_of_agent: tuple[int, ...] | jax.Array,
) -> jax.Array:
    """Each sample times its agent's group kernel, on either flat layout.

    Args:
        x: [B, D] with per-sample agent ids [B], or [P, N, Q, D] agent-major when ``ids`` is
            None.
        kernels: [G, D, O].
        ids: agent id per sample, or None for the agent-major layout.
        group_of_agent: agent -> group table (length N), static (a tuple) or traced.

    Returns:
        [B, O] or [P, N, Q, O].
    """
    table = (
        np.asarray(group_of_agent, np.int32)
        if isinstance(group_of_agent, tuple)
        else group_of_agent
    )
    if ids is None:
        return agent_matmul(x, kernels, table)
    return grouped_matmul(x, kernels, jnp.asarray(table)[ids])


@jax.custom_vjp
def scale_by_agent(x: jax.Array, scales: jax.Array) -> jax.Array:
    """y[p, n, q, f] = x[p, n, q, f] · scales[n, f] on the agent-major layout.

    Args:
        x: [P, N, Q, F] agent-major rows.
        scales: [N, F] one vector per agent (Prism's spectra s ⊙ m_i).

    Returns:
        [P, N, Q, F]. The same numbers as ``x * scales[:, None]``; the backward pass
        computes ∂L/∂scales[n] = Σ_{p,q} x[p, n, q] ⊙ g[p, n, q] as a batched product with a
        ones vector. XLA:CPU otherwise emits that sum as a YNNPACK reduce fusion that ran
        slower than the layer's products (Prism at N = 32, width 256, full rank: 2.7x FuPS's
        time with the reduction, 1.85x with the product; docs/decisions/0028).
    """
    return x * scales[:, None]


def _scale_forward(x: jax.Array, scales: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    return x * scales[:, None], (x, scales)


def _scale_backward(
    residuals: tuple[jax.Array, ...], grad: jax.Array
) -> tuple[jax.Array, jax.Array]:
    x, scales = residuals
    num_agents, features = scales.shape
    rows = jnp.moveaxis(x * grad, 1, 0).reshape(num_agents, -1, features)  # [N, P·Q, F]
    return grad * scales[:, None], sum_as_product(rows)


scale_by_agent.defvjp(_scale_forward, _scale_backward)


def sum_as_product(x: jax.Array) -> jax.Array:
    """Σ_b x[g, b, f]: [G, B, F] -> [G, F], computed as a batched product with a ones vector.

    For backward passes that sum a gradient over a broadcast axis: XLA:CPU emits the plain
    sum as a YNNPACK reduce fusion, which ran slower than the products around it (Prism's
    spectra, ``scale_by_agent``; Kaleidoscope's kernel, ``kaleidoscope.soft_threshold``:
    2.5x FuPS's time at N = 32, width 256 with the reduction; docs/decisions/0028).
    """
    ones = jnp.ones(x.shape[:2], x.dtype)
    return jnp.einsum("gb,gbf->gf", ones, x)


def per_agent(values: jax.Array, ids: jax.Array | None) -> jax.Array:
    """Per-agent rows [N, ...] for each sample.

    values[ids] ([B, ...]) per sample, or, agent-major, values[:, None] ([N, 1, ...]) to
    broadcast against [P, N, Q, ...].
    """
    return values[:, None] if ids is None else values[ids]


def agent_axis(x: jax.Array, agent_ids: object, num_agents: int) -> int | None:
    """The axis of x along which static ids enumerate 0..N-1, or None.

    Only a concrete numpy ``agent_ids`` is known at trace time: when, broadcast to
    x.shape[:-1], it equals ``arange(N)`` along one axis of length N (for example
    ``np.arange(N)`` for x [..., N, D], or ``np.arange(N)[:, None]`` for x [N, B, D]), the
    layer runs agent-major batched products (``agent_matmul``); otherwise per-sample ids.
    """
    if not isinstance(agent_ids, np.ndarray) or agent_ids.ndim > x.ndim - 1:
        return None
    ids = agent_ids.reshape((1,) * (x.ndim - 1 - agent_ids.ndim) + agent_ids.shape)
    long_axes = [k for k, size in enumerate(ids.shape) if size != 1]
    if len(long_axes) != 1 or ids.shape[long_axes[0]] != num_agents:
        return None
    axis = long_axes[0]
    if x.shape[axis] != num_agents or not np.array_equal(ids.ravel(), np.arange(num_agents)):
        return None
    return axis


def flatten_leading(x: jax.Array, agent_ids: jax.Array | np.ndarray) -> tuple[jax.Array, jax.Array]:
    """Broadcast agent ids to x's leading axes and flatten both to one sample axis.

    Args:
        x: [..., D].
        agent_ids: integer array broadcastable to x.shape[:-1].

    Returns:
        (x [B, D], ids [B]) with B the product of x's leading axes.
    """
    ids = jnp.broadcast_to(agent_ids, x.shape[:-1]).astype(jnp.int32)
    return x.reshape(-1, x.shape[-1]), ids.reshape(-1)
