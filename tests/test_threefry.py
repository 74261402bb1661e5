"""tune_cpu() lowers Threefry unrolled on CPU, with the same bits; without jax's rule, rolled."""

import jax
import numpy as np
import pytest
from jax._src.random import threefry2x32 as impl
from jax.extend.random import threefry_2x32

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


def test_a_jax_without_the_private_rule_keeps_its_own_lowering(monkeypatch):
    """A future jax may drop ``_threefry2x32_lowering_rule``: a warning, nothing registered
    (tests/test_cpu.py checks that an untuned process lowers Threefry rolled)."""
    monkeypatch.delattr(impl, "_threefry2x32_lowering_rule")
    with pytest.warns(RuntimeWarning, match="Threefry stays rolled on CPU"):
        assert not unroll_threefry_on_cpu()
