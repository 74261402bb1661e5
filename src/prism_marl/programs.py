"""The jitted programs a run executes, built in one place: init, chunk, evaluation, diversity.

Seeds are a leading axis on every state. Training chunks and evaluations ``vmap`` over it;
initialisation maps over it one seed at a time (``lax.map``) instead. Why: under ``vmap`` an
orthogonal kernel initialiser's QR (and Prism's SVD in ``spectral_init``) becomes one LAPACK
custom call on a batch of matrices, and jaxlib (0.10.2) splits such a batch over XLA's CPU
thread pool from a thread *of that pool* and blocks waiting for the pieces: with two such
calls in flight on a 2-core machine no thread is left to run the pieces, and the process hangs
at 0% CPU forever (docs/decisions/0014-no-batched-lapack.md). One matrix per call runs inline.
``batched_lapack_calls`` finds the calls that would split, in a program's lowered text; the
test suite holds every program of every strategy × algorithm × family to none.

The builders are memoised per algorithm object (and ``run.build_algorithm`` returns one object
per distinct setting), so trainers of equal settings in one process (a resumed run, evaluation
after training, repeated runs) trace and compile each program once.

Programs that run once or now and then (init, evaluation, SND) compile with XLA:CPU's
faster-compiling options (``quick_compile_options``, docs/decisions/0027); training chunks,
where the time goes, keep XLA's defaults.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable
from typing import Any

import jax

from prism_marl.algos import Algorithm

_LAPACK_CALL = re.compile(r"custom_call @(lapack_\w+)\((.*)")
_BATCH_DIMS = re.compile(r'num_batch_dims = "(\d+)"')
_TENSOR = re.compile(r"tensor<[^>]*>")


QUICK_COMPILE: dict[str, Any] = {
    "xla_backend_optimization_level": 1,
    "xla_cpu_use_fusion_emitters": False,
}
"""LLVM at -O1 and XLA's classic elemental emitter: compiles in about half the time."""


def quick_compile_options() -> dict[str, Any]:
    """``QUICK_COMPILE`` on the CPU backend, less any option the user's ``XLA_FLAGS`` sets.

    For programs whose compile outweighs their run time (init, evaluation, SND). Measured
    with MAPPO and Prism, 3 seeds (2026-12-03, docs/decisions/0027): evaluation compiles in
    3.3 s against 7.2 s on LBF, 8.2 against 19.9 on SMAX, 15.5 against 22.6 on MaBrax ant,
    and runs within 3-14% of the default build's time.
    """
    if jax.default_backend() != "cpu":
        return {}
    flags = os.environ.get("XLA_FLAGS", "")
    return {name: value for name, value in QUICK_COMPILE.items() if name not in flags}


@functools.lru_cache(maxsize=32)
def init_seeds(algo: Algorithm) -> Callable[[jax.Array], Any]:
    """``keys [S, 2] -> state`` with a leading seed axis: ``algo.init`` per seed, in sequence.

    Equal to ``jit(vmap(algo.init))`` value for value (a PRNG draw under vmap is the draw of
    the unbatched call), without batched LAPACK calls; init runs once per run, so mapping the
    seeds in sequence costs nothing measurable.
    """
    return jax.jit(
        lambda keys: jax.lax.map(algo.init, keys), compiler_options=quick_compile_options()
    )


@functools.lru_cache(maxsize=32)
def train_chunks(algo: Algorithm, num_updates: int) -> jax.stages.Wrapped:
    """``state -> (state, metrics)``: ``num_updates`` updates of every seed (vmapped, jitted).

    The input state is donated: its buffers become the output's, so a chunk holds one state
    (a replay buffer of gigabytes, QMIX on SMAX) instead of two, and the caller must not use
    the state it passed in again; pass it through ``donatable`` where a buffer may appear
    twice.
    """
    return jax.jit(jax.vmap(lambda state: algo.train_chunk(state, num_updates)), donate_argnums=0)


def donatable(state: Any) -> Any:
    """``state`` with every buffer appearing once, as a donating program requires.

    Host-side hooks may put one array in two places (a preparation that sets the target
    network to the new parameters); XLA refuses to donate one buffer twice, so the second
    and later places get copies. Leaves that are not jax arrays pass unchanged.
    """
    seen: set[int] = set()

    def once(leaf: Any) -> Any:
        if not isinstance(leaf, jax.Array):
            return leaf
        if not leaf.is_fully_addressable:
            buffer: Any = id(leaf)
        elif len(leaf.sharding.device_set) > 1:  # seeds spread over devices: one buffer each
            buffer = tuple(shard.data.unsafe_buffer_pointer() for shard in leaf.addressable_shards)
        else:
            buffer = leaf.unsafe_buffer_pointer()
        if buffer in seen:
            return leaf.copy()
        seen.add(buffer)
        return leaf

    return jax.tree_util.tree_map(once, state)


@functools.lru_cache(maxsize=32)
def evaluations(algo: Algorithm, episodes: int) -> Callable[[Any, jax.Array, jax.Array], Any]:
    """``(variables, keys [S, 2], greedy []) -> (returns, won)``, each [S, episodes].

    The mode is an argument, not part of the program: a stochastic policy's final evaluation
    plays both modes, and one compile serves them (an evaluation on MaBrax compiles for tens
    of seconds).
    """
    evaluate = lambda v, k, greedy: algo.evaluate(v, k, episodes, greedy)  # noqa: E731
    return jax.jit(
        jax.vmap(evaluate, in_axes=(0, 0, None)), compiler_options=quick_compile_options()
    )


@functools.lru_cache(maxsize=32)
def diversities(algo: Algorithm, episodes: int) -> Callable[[Any, jax.Array], Any]:
    """``(variables, keys [S, 2]) -> SND [S]`` over ``episodes`` greedy episodes (vmapped)."""
    from prism_marl.rl.diversity import system_neural_diversity

    return jax.jit(
        jax.vmap(lambda v, k: system_neural_diversity(algo, v, k, episodes)),
        compiler_options=quick_compile_options(),
    )


def batched_lapack_calls(lowered_text: str) -> list[str]:
    """LAPACK custom calls on a batch of more than one matrix in a lowered (StableHLO) program.

    Returns them as ``"name tensor<...>"`` strings; ``[]`` when the program is safe.

    A call carries ``num_batch_dims``; its first operand's leading that-many dimensions are the
    batch. A batch of one matrix runs inline and is not reported.
    """
    found = []
    for line in lowered_text.splitlines():
        call = _LAPACK_CALL.search(line)
        if call is None:
            continue
        dims = _BATCH_DIMS.search(line)
        batch_dims = int(dims.group(1)) if dims else 0
        # The signature ends the line: ``} : (operand types) -> result types``.
        operand = _TENSOR.search(line.rsplit("} :", 1)[-1])
        shape = operand.group(0) if operand else ""
        sizes = [int(s) for s in re.findall(r"(\d+)x", shape)[:batch_dims]]
        if batch_dims and (not sizes or math.prod(sizes) > 1):
            found.append(f"{call.group(1)} {shape}")
    return found
