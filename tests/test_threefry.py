"""Importing prism_marl lowers Threefry unrolled on CPU, with the same bits."""

import jax
import numpy as np
from jax.extend.random import threefry_2x32

import prism_marl  # noqa: F401  (registers the lowering)
from prism_marl.threefry import unroll_threefry_on_cpu


def test_random_draws_compile_without_a_loop():
    assert unroll_threefry_on_cpu()  # the pinned jax has the rule
    text = jax.jit(lambda k: jax.random.bits(k, (8,))).lower(jax.random.key(0)).compile()
    assert "while" not in text.as_text()


def test_threefry_matches_the_known_answers_of_random123():
    """Threefry-2x32, 20 rounds: Random123's known-answer vectors (key, counter -> output)."""
    compiled = jax.jit(threefry_2x32)
    vectors = [
        ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF,) * 2, (0xFFFFFFFF,) * 2, (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ]
    for key, counter, expected in vectors:
        got = compiled(np.uint32(key), np.uint32(counter))
        np.testing.assert_array_equal(np.asarray(got), np.uint32(expected))
