"""The memory check before a run: state sizes from shapes, the kernel's estimate, the error."""

import jax
import pytest

from prism_marl.algos import make_algorithm
from prism_marl.config import EnvConfig
from prism_marl.envs import make_env
from prism_marl.errors import ConfigError
from prism_marl.memory import available_bytes, require_state_fits, state_bytes
from prism_marl.programs import init_seeds
from prism_marl.sharing import FuPS
from tests.conftest import TINY_ALGO


def tiny(algo: str):
    env = make_env(EnvConfig(id="lbf:8x8-2p-2f-coop"))
    return make_algorithm(algo, env, FuPS(), TINY_ALGO[algo], 10_000)


KEYS = jax.random.split(jax.random.key(0), 2)


def test_available_bytes_reads_memavailable_in_kib(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   1500 kB\nBuffers: 1 kB\n")
    assert available_bytes(meminfo) == 1500 * 1024
    meminfo.write_text("MemTotal:       24000000 kB\n")
    assert available_bytes(meminfo) is None
    assert available_bytes(tmp_path / "missing") is None


def test_state_bytes_from_shapes_equal_the_initialised_states_bytes():
    algo = tiny("qmix")
    state = init_seeds(algo)(KEYS)
    assert state_bytes(algo, KEYS) == sum(x.nbytes for x in jax.tree.leaves(state))


def test_a_state_larger_than_the_memory_names_the_replay_buffer_or_the_seeds():
    qmix, mappo = tiny("qmix"), tiny("mappo")
    needed = state_bytes(qmix, KEYS)
    require_state_fits(qmix, KEYS, TINY_ALGO["qmix"], available=needed)  # fits exactly
    with pytest.raises(ConfigError, match=r"^algo.buffer-size: the training state of 2 seeds"):
        require_state_fits(qmix, KEYS, TINY_ALGO["qmix"], available=needed - 1)
    with pytest.raises(ConfigError, match=r"^num-seeds: .* lower num-seeds or the number"):
        require_state_fits(mappo, KEYS, TINY_ALGO["mappo"], available=1)
