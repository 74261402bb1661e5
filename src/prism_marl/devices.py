"""Spreading a run's seeds over the local devices.

Every leaf of a run's state has the seeds as its leading axis, and every program maps over
that axis (``programs``), so a state sharded along it runs each device's seeds on that device:
``jit`` partitions the vmapped programs by the input's sharding, with no change to the programs.
Seeds are independent, so the results equal one device's up to floating-point reassociation.
The device count is how a run executes, not what it computes: it is not part of ``RunConfig``,
and a run may resume on another count (checkpoints restore into the new sharding).
Several hosts: start every process with ``jax.distributed.initialize()``; this module uses
the local devices of each.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from prism_marl.errors import ConfigError

SEED_AXIS = "seeds"


def seed_sharding(num_seeds: int, devices: int | None = None) -> NamedSharding | None:
    """The sharding that splits the seed axis over ``devices`` local devices, or None for one.

    ``devices`` None takes as many local devices as divide ``num_seeds`` evenly (all of them
    when they do); an explicit count must be available and divide ``num_seeds`` (a one-line
    ``ConfigError`` naming ``devices`` otherwise).
    """
    local = jax.local_devices()
    if devices is None:
        count = max(d for d in range(1, len(local) + 1) if num_seeds % d == 0)
    else:
        if not 1 <= devices <= len(local):
            raise ConfigError(
                f"devices: must be between 1 and the {len(local)} local "
                f"{local[0].platform} device(s); got {devices}"
            )
        if num_seeds % devices:
            raise ConfigError(
                f"devices: {devices} devices must divide num-seeds ({num_seeds}) evenly"
            )
        count = devices
    if count == 1:
        return None
    return NamedSharding(Mesh(np.asarray(local[:count]), (SEED_AXIS,)), PartitionSpec(SEED_AXIS))


def place(tree: Any, sharding: NamedSharding | None) -> Any:
    """``tree`` with every array split along its leading (seed) axis; unchanged for None."""
    if sharding is None:
        return tree
    return jax.device_put(tree, sharding)


def device_count(tree: Any) -> int:
    """How many devices hold the arrays of ``tree`` (its first array's)."""
    leaves = [leaf for leaf in jax.tree.leaves(tree) if isinstance(leaf, jax.Array)]
    return len(leaves[0].sharding.device_set) if leaves else 1
