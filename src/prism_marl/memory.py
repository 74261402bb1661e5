"""Whether a run's training state fits in memory, checked before anything is written.

The state of every seed (networks, optimizers, environments and, for QMIX, VDN and MATD3, the
replay buffer) lives in host memory for the whole run, and a training chunk donates it to its
output (``programs.train_chunks``), so the run needs the state once plus the chunk's
temporaries. A replay buffer too large for the machine otherwise ends in the kernel's
out-of-memory kill: no message, no exit status the command controls (QMIX's SMACv2 preset on
smacv2_20_units asks for over 30 GB).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax

from prism_marl.algos import Algorithm
from prism_marl.errors import require
from prism_marl.programs import init_seeds

MEMINFO = Path("/proc/meminfo")


def state_bytes(algo: Algorithm, keys: jax.Array) -> int:
    """Bytes of the training state of every seed, from shapes alone (nothing is computed)."""
    shapes = jax.eval_shape(init_seeds(algo), keys)
    return sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(shapes))


def available_bytes(meminfo: Path = MEMINFO) -> int | None:
    """The kernel's estimate of memory available to a new process (``MemAvailable``), or None.

    None where ``/proc/meminfo`` does not exist or has no such line (not Linux).
    """
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(":")
        if name == "MemAvailable":
            return int(value.split()[0]) * 1024  # reported in KiB
    return None


def require_state_fits(
    algo: Algorithm, keys: jax.Array, config: Any, available: int | None = None
) -> None:
    """Raise ``ConfigError`` when the state of every seed alone exceeds the available memory.

    ``config`` is the algorithm's config: the message names ``algo.buffer-size`` where the
    algorithm has a replay buffer (what makes a state large), else ``num-seeds``.
    ``available`` defaults to ``available_bytes()``; without an estimate nothing is checked.
    """
    available = available_bytes() if available is None else available
    if available is None:
        return
    needed = state_bytes(algo, keys)
    buffer_size = getattr(config, "buffer_size", None)
    field = "num-seeds" if buffer_size is None else "algo.buffer-size"
    lower = "num-seeds" if buffer_size is None else f"algo.buffer-size (now {buffer_size:,})"
    require(
        needed <= available,
        field,
        f"the training state of {keys.shape[0]} seeds needs {needed / 2**30:.1f} GiB, more "
        f"than the {available / 2**30:.1f} GiB of memory available; lower {lower} or the "
        "number of seeds",
    )
