"""Trace-time facts about loops that let a layer price its paths (``reused_kernels``).

Part of the speed boundary (``prism_marl.fast``): the hint changes which program is built,
never its numbers beyond rounding.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_KERNELS_REUSED = contextvars.ContextVar("prism_marl_kernels_reused", default=1)


@contextlib.contextmanager
def reused_kernels(iterations: int) -> Iterator[None]:
    """Trace-time hint: layers traced inside run ``iterations`` times over fixed parameters.

    Wrap the ``lax.scan`` of a loop whose body applies layers with parameters the loop does
    not change and that is not differentiated (collection rollouts, evaluation, SND): XLA
    hoists whatever depends on the parameters only (Prism's per-agent W_i) out of the loop,
    so building it once serves every step and a layer may price its paths with the build
    shared by the ``iterations`` steps (``SpectralDense``; docs/decisions/0023, 0048). A
    differentiated unroll (a GRU in a loss) pays the kernels' gradient at every step and is
    not wrapped. The hint is read while tracing, so it changes which program is built, never
    its numbers beyond rounding.
    """
    token = _KERNELS_REUSED.set(max(int(iterations), 1))
    try:
        yield
    finally:
        _KERNELS_REUSED.reset(token)


def kernels_reused() -> int:
    """Steps sharing one kernel build in the loop being traced (``reused_kernels``); else 1."""
    return _KERNELS_REUSED.get()
