"""Shared test configuration: CPU only; the slow learning checks spread over two workers."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

import prism_marl  # noqa: E402,F401  (sets XLA's CPU flags before any test imports jax)


def pytest_configure(config):
    """A persistent XLA cache per test process: trainers built twice from one config (resume,
    determinism and results tests) compile their programs once. Programs that compile in under
    a second are not worth the disk round trip."""
    cache_dir = tempfile.mkdtemp(prefix="prism-marl-xla-")
    atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def pytest_collection_modifyitems(config, items):
    """Order the suite so that ``make test`` (two xdist workers, ``--dist worksteal``) starts
    both workers on the long learning checks.

    worksteal hands each worker one half of the collection and later moves the unstarted tail
    of a busy worker's queue to an idle one; a running test never moves. Left in collection
    order, the learning checks (``slow(minutes=...)``, tens of minutes together) would sit at
    the end of one half and keep one core busy long after the other ran out of work. Here the
    slow tests are balanced over the two halves by their stated minutes (longest first onto
    the lighter half) and lead each half; fast tests keep their order, half to each.
    """
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    fast = [item for item in items if item.get_closest_marker("slow") is None]
    halves: list[list] = [[], []]
    load = [0.0, 0.0]
    for item in sorted(slow, key=lambda i: -i.get_closest_marker("slow").kwargs.get("minutes", 1)):
        lighter = 0 if load[0] <= load[1] else 1
        halves[lighter].append(item)
        load[lighter] += item.get_closest_marker("slow").kwargs.get("minutes", 1)
    # Equal halves of the whole collection, as worksteal splits it.
    first = max(0, len(items) // 2 - len(halves[0]))
    items[:] = halves[0] + fast[:first] + halves[1] + fast[first:]
