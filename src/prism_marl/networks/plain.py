"""Plain (unshared, agent-free) dense stacks: centralised critics and QMIX's hypernetworks.

These networks see global inputs, so no sharing strategy applies; what matters is how they
multiply. Axis glossary: ... any leading axes, F input features, O output features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax

Initializer = Callable[..., jax.Array]
DEFAULT_INIT: Initializer = nn.initializers.lecun_normal()


def dense_stack(
    x: jax.Array,
    hidden_sizes: Sequence[int],
    out_features: int,
    activation: Callable[[jax.Array], jax.Array],
    *,
    hidden_init: Initializer = DEFAULT_INIT,
    output_init: Initializer = DEFAULT_INIT,
    prefix: str | None = None,
) -> jax.Array:
    """X [..., F] -> [..., O]: (Dense, activation) per hidden size, then a linear Dense.

    Call inside a compact module's ``__call__``: the Dense layers become that module's
    children, named ``Dense_k`` (flax's automatic names) or ``{prefix}_k``. The leading axes
    are flattened first because XLA CPU runs 2-D products and their kernel gradients faster
    than products with several free axes (``fast.grouped.flat_matmul``).
    """
    flat = x.reshape(-1, x.shape[-1])
    sizes = [*hidden_sizes, out_features]
    for k, width in enumerate(sizes):
        last = k == len(sizes) - 1
        name = None if prefix is None else f"{prefix}_{k}"
        init = output_init if last else hidden_init
        flat = nn.Dense(width, kernel_init=init, name=name)(flat)
        if not last:
            flat = activation(flat)
    return flat.reshape(*x.shape[:-1], out_features)
