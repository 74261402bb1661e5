"""Matrix-product FLOPs of a jitted program, counted from its jaxpr with loop trip counts.

XLA's cost analysis (``jax.jit(f).lower(x).cost_analysis()``) counts a ``while`` body once
whatever its trip count, so a 50-step GRU unroll (a ``scan``) shows as one step. This walks the
jaxpr instead and multiplies every ``scan`` body by its length:

    FLOPs(dot_general) = 2 · |output| · Π contracted dimensions

summed over every product reached (through ``pjit``, ``custom_jvp``/``custom_vjp``, ``remat``,
``scan`` × length, ``cond`` taking its largest branch), after removing code whose results are
never used, as XLA does (a ``jax.vjp`` taken only for its transpose traces a forward product
nobody reads: ``networks.gru``). Elementwise work is left out: on these networks it is a few
percent of the products. A ``while`` loop of unknown trip count (none in the training programs)
counts its body once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
from jax.extend import core as jex_core


def _dot_flops(eqn: Any) -> int:
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    lhs_shape = eqn.invars[0].aval.shape
    contracted = math.prod(lhs_shape[d] for d in lhs_contract)
    return 2 * math.prod(eqn.outvars[0].aval.shape) * contracted


def _inner_jaxprs(params: dict[str, Any]) -> list[Any]:
    found = []
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, jex_core.ClosedJaxpr):
                found.append(item.jaxpr)
            elif isinstance(item, jex_core.Jaxpr):
                found.append(item)
    return found


def jaxpr_matmul_flops(jaxpr: Any) -> int:
    """Matrix-product FLOPs of one evaluation of a (closed or open) jaxpr, dead code removed."""
    # Private to jax (dce_jaxpr has no public home yet), so imported here: a jax that moves it
    # breaks FLOP counts only, not `import prism_marl.bench` and the CLI that imports it.
    from jax._src.interpreters import partial_eval as pe

    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    live, _ = pe.dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars))
    return _live_matmul_flops(live)


def _live_matmul_flops(jaxpr: Any) -> int:
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            total += _dot_flops(eqn)
        elif name == "cond":
            total += max(_live_matmul_flops(branch) for branch in eqn.params["branches"])
        else:
            inner = sum(_live_matmul_flops(j) for j in _inner_jaxprs(eqn.params))
            total += inner * (eqn.params["length"] if name == "scan" else 1)
    return total


def matmul_flops(fn: Callable[..., Any], *args: Any) -> int:
    """Matrix-product FLOPs of one call ``fn(*args)`` (``args`` arrays or shape structs)."""
    return jaxpr_matmul_flops(jax.make_jaxpr(fn)(*args))
