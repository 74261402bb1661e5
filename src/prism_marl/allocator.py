"""Keep freed memory in the process: glibc malloc settings for XLA:CPU's per-call buffers.

XLA:CPU allocates each execution's temporary and output buffers with ``malloc`` and frees them
when the call returns. glibc serves allocations above its mmap threshold (128 KiB, rising with
use to at most 32 MiB) from freshly mapped pages and unmaps them at ``free``, and it trims the
heap's free top back to the kernel; either way the next call touches new pages, and the kernel
zero-fills each one on a page fault. A QMIX update on LBF with 3 seeds vmapped took 110,000
page faults (about 430 MB of fresh pages) and 608 ms; with mmap off for ``malloc`` and the
heap's top kept, the freed buffers are reused: 2 faults and 434 ms, for a peak resident size of
2.6 GB instead of 2.0 GB (docs/decisions/0025).
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h> parameter numbers
M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` serve every allocation from its heap and keep what is freed.

    ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD, 2³¹ − 1)``: process-wide, for
    allocations from now on. ``prism_marl.tune_cpu`` calls it unless the environment already
    sets glibc's malloc (``MALLOC_*_`` variables or ``GLIBC_TUNABLES``: the user's setting wins).
    Returns False, changing nothing, where the C library has no ``mallopt`` (not glibc: macOS,
    musl).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, _NEVER_TRIM))
    return all([bool(mallopt(param, value)) for param, value in settings])


def user_sets_malloc(environ: dict[str, str]) -> bool:
    """Whether ``environ`` already tunes glibc's malloc (then ``prism_marl.tune_cpu`` does not)."""
    return "GLIBC_TUNABLES" in environ or any(
        name.startswith("MALLOC_") and name.endswith("_") for name in environ
    )
