"""Importing prism_marl makes repeated calls of a compiled program reuse freed memory."""

import os
import subprocess
import sys

from prism_marl.allocator import user_sets_malloc

# 64 MiB of temporaries and output per call; minor page faults of calls 7-16.
PROGRAM = """
import resource
import prism_marl, jax, jax.numpy as jnp
f = jax.jit(lambda x: jnp.sum(jnp.tanh(jnp.outer(x, x)) @ x) + jnp.outer(x, x))
x = jnp.linspace(0.0, 1.0, 4096)
for _ in range(6):
    jax.block_until_ready(f(x))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    jax.block_until_ready(f(x))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(extra_env: dict[str, str]) -> int:
    env = {k: v for k, v in os.environ.items() if not user_sets_malloc({k: v})}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(out.stdout.strip().splitlines()[-1])


def test_freed_buffers_are_reused_unless_the_user_tunes_malloc():
    tuned = page_faults({})
    # A user's own malloc setting wins: glibc's default behaviour, fresh pages every call.
    default = page_faults({"MALLOC_TOP_PAD_": str(128 * 1024)})
    assert default > 10 * 16_384  # at least one fresh 64 MiB buffer per call
    assert tuned < default / 10  # the heap may still grow once or twice


def test_user_malloc_settings_are_recognised():
    assert user_sets_malloc({"MALLOC_ARENA_MAX_": "2"})
    assert user_sets_malloc({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"})
    assert not user_sets_malloc({"MALLOC": "x", "PATH": "/bin"})
