"""tune_cpu() makes repeated calls of a compiled program reuse freed memory; importing does not."""

import os
import subprocess
import sys

from prism_marl.allocator import user_sets_malloc

# 64 MiB of temporaries and output per call; minor page faults of each of calls 7-36.
PROGRAM = """
import resource, sys
import prism_marl, jax, jax.numpy as jnp
if sys.argv[1:] == ["tune"]:
    prism_marl.tune_cpu()
f = jax.jit(lambda x: jnp.sum(jnp.tanh(jnp.outer(x, x)) @ x) + jnp.outer(x, x))
x = jnp.linspace(0.0, 1.0, 4096)
for _ in range(6):
    jax.block_until_ready(f(x))
faults = []
for _ in range(30):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    jax.block_until_ready(f(x))
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults)
"""
BUFFER_PAGES = 64 * 1024 * 1024 // 4096


def calls_on_fresh_pages(extra_env: dict[str, str], tune: bool = True) -> int:
    """How many of 30 warm calls touched at least half a buffer's worth of new pages."""
    env = {k: v for k, v in os.environ.items() if not user_sets_malloc({k: v})}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, *(["tune"] if tune else [])],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    faults = [int(n) for n in out.stdout.strip().splitlines()[-1].split()]
    return sum(n >= BUFFER_PAGES // 2 for n in faults)


def test_freed_buffers_are_reused_unless_the_user_tunes_malloc():
    tuned = calls_on_fresh_pages({})
    # A user's own malloc setting wins: glibc's default behaviour, fresh pages every call.
    default = calls_on_fresh_pages({"MALLOC_TOP_PAD_": str(128 * 1024)})
    assert default == 30
    # Importing the package alone leaves glibc's default (decision 0040).
    assert calls_on_fresh_pages({}, tune=False) == 30
    # The heap still grows now and then (a freed block's neighbour may still be in use when
    # the next call allocates: about 1 call in 8 on a loaded machine), never on most calls.
    assert tuned <= 15


def test_user_malloc_settings_are_recognised():
    assert user_sets_malloc({"MALLOC_ARENA_MAX_": "2"})
    assert user_sets_malloc({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"})
    assert not user_sets_malloc({"MALLOC": "x", "PATH": "/bin"})
