"""A circular replay buffer of pytrees, shared by the off-policy algorithms.

The buffer holds C items along the leading axis of every leaf. QMIX stores one item per
environment sequence ([C, T, ...]); MATD3 one item per time step of every environment
([C, E, ...]), so that an environment's consecutive steps are consecutive items and n-step
windows are index ranges. Axis glossary: C capacity, K items written at once, B batch, n window.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Replay(NamedTuple):
    """A circular buffer: ``data`` leaves [C, ...], the next slot to write and the filled count."""

    data: Any
    position: jax.Array  # [] int32, next slot to write
    filled: jax.Array  # [] int32, slots written so far, at most C


def empty_replay(template: Any, capacity: int) -> Replay:
    """A buffer of ``capacity`` zero items shaped like ``template`` (a pytree of one item)."""
    data = jax.tree_util.tree_map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), template
    )
    return Replay(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def replay_add(replay: Replay, items: Any) -> Replay:
    """Write K items (leaves [K, ...], K <= C) at ``position``, overwriting the oldest.

    Slots (position + k) mod C for k < K; position ← (position + K) mod C; filled ←
    min(filled + K, C).
    """
    capacity = jax.tree_util.tree_leaves(replay.data)[0].shape[0]
    count = jax.tree_util.tree_leaves(items)[0].shape[0]
    slots = (replay.position + jnp.arange(count)) % capacity
    data = jax.tree_util.tree_map(lambda store, new: store.at[slots].set(new), replay.data, items)
    return Replay(
        data, (replay.position + count) % capacity, jnp.minimum(replay.filled + count, capacity)
    )


def replay_sample(replay: Replay, key: jax.Array, batch_size: int) -> Any:
    """B items drawn uniformly with replacement from the filled slots: leaves [B, ...]."""
    indices = jax.random.randint(key, (batch_size,), 0, jnp.maximum(replay.filled, 1))
    return jax.tree_util.tree_map(lambda x: x[indices], replay.data)


def replay_windows(replay: Replay, key: jax.Array, batch_size: int, n: int) -> Any:
    """B uniform windows of n consecutive items of one environment: leaves [n, B, ...].

    For buffers of per-step items with leaves [C, E, ...]. A window starts at an item whose
    age (items written after it) is at least n − 1, so all its n items were written in order
    after it: the same environment's following steps.
    """
    capacity, num_envs = jax.tree_util.tree_leaves(replay.data)[0].shape[:2]
    row_key, env_key = jax.random.split(key)
    age = jax.random.randint(row_key, (batch_size,), n - 1, jnp.maximum(replay.filled, n))
    start = (replay.position - 1 - age) % capacity
    env = jax.random.randint(env_key, (batch_size,), 0, num_envs)
    rows = (start[None] + jnp.arange(n)[:, None]) % capacity
    return jax.tree_util.tree_map(lambda x: x[rows, env[None]], replay.data)
