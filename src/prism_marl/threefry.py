"""Threefry random bits unrolled on CPU: one fused kernel instead of a 5-iteration loop.

jax lowers its default PRNG, Threefry-2x32 (Salmon et al., "Parallel random numbers: as easy
as 1, 2, 3", SC 2011: 20 rounds in 5 groups of 4), with the groups rolled into a
``fori_loop`` on CPU, to keep compiles short. Inside a training chunk every random draw (the
policy's samples, LBF's food and turn order, SMAX's unit spawns) then runs as an XLA while
loop of small thunks and loop-carry copies on each of its calls: in a profile of MAPPO's LBF
chunk, 357 copies of u32 key arrays ran 721 times per chunk, about a quarter of its ops' time.
The unrolled lowering, which jax uses on GPU, fuses into one elementwise kernel: the same
bits, 16-18% more training steps per second on LBF and SMAX and shorter compiles
(docs/decisions/0029).

The rule is private to jax. Where a jax lacks it, or registers lowerings differently, nothing
changes: jax keeps its own rolled lowering (the same bits, slower) and a warning says so.
"""

from __future__ import annotations

import warnings


def unroll_threefry_on_cpu() -> bool:
    """Register jax's unrolled Threefry lowering for the CPU platform, process-wide.

    Affects programs lowered from now on; the bits are identical (the same 20 rounds).
    ``prism_marl.tune_cpu`` calls it.

    Returns:
        True when the rule was registered. False, with a ``RuntimeWarning`` and nothing
        changed, where this jax has no such rule (it is jax's private
        ``jax._src.random.threefry2x32._threefry2x32_lowering_rule``; jax 0.10.2 has it) or
        refuses to register it.
    """
    try:
        from jax._src.random import threefry2x32 as impl
        from jax.extend.random import threefry2x32_p
        from jax.interpreters import mlir

        mlir.register_lowering(
            threefry2x32_p, impl._threefry2x32_lowering_rule, platform="cpu", inline=False
        )
    except (ImportError, AttributeError, TypeError) as error:
        # Only speed is at stake, so a jax newer than this module knows runs on.
        warnings.warn(
            f"prism-marl: Threefry stays rolled on CPU ({type(error).__name__}: {error}); "
            "random bits are the same, training chunks about 15% slower (decision 0029)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True
