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
"""

from __future__ import annotations


def unroll_threefry_on_cpu() -> bool:
    """Register jax's unrolled Threefry lowering for the CPU platform, process-wide.

    Affects programs lowered from now on; the bits are identical (the same 20 rounds).
    Returns False, changing nothing, where this jax has no such lowering rule (it is jax's
    private ``_threefry2x32_lowering_rule``; the pinned jax 0.10.2 has it).
    """
    try:
        from jax._src.random import threefry2x32 as impl

        rule = impl._threefry2x32_lowering_rule
    except (ImportError, AttributeError):
        return False
    from jax.extend.random import threefry2x32_p
    from jax.interpreters import mlir

    mlir.register_lowering(threefry2x32_p, rule, platform="cpu", inline=False)
    return True
