"""fast.layout: the agents-first relayouts move axes and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.fast.layout import AgentsFirst, BatchLayout
from prism_marl.sharing import FuPS, Prism


class _Batch(NamedTuple):
    obs: jnp.ndarray  # [T, E, N, D]
    starts: jnp.ndarray  # [T, E]


def _batch() -> _Batch:
    obs = jnp.arange(2 * 3 * 4 * 5, dtype=jnp.float32).reshape(2, 3, 4, 5)
    return _Batch(obs=obs, starts=jnp.arange(6).reshape(2, 3))


def test_agents_first_batch_moves_only_the_named_fields_and_says_where_envs_are():
    batch, env_axes = BatchLayout(agents_first=True).arrange(_batch(), frozenset({"obs"}))
    assert batch.obs.shape == (4, 2, 3, 5)
    # Agent 2's observation of step 1, env 0 is where the reference layout keeps it.
    np.testing.assert_array_equal(batch.obs[2, 1, 0], _batch().obs[1, 0, 2])
    np.testing.assert_array_equal(batch.starts, _batch().starts)
    assert env_axes == {"obs": 2, "starts": 1}


def test_reference_layout_is_the_identity():
    batch, env_axes = BatchLayout(agents_first=False).arrange(_batch(), frozenset({"obs"}))
    assert batch.obs.shape == (2, 3, 4, 5)
    assert env_axes == {"obs": 1, "starts": 1}
    assert BatchLayout(agents_first=False).agent_ids(4).tolist() == [0, 1, 2, 3]


def test_agent_ids_enumerate_the_leading_axis_when_agents_come_first():
    ids = BatchLayout(agents_first=True).agent_ids(3)
    assert ids.shape == (3, 1, 1)
    assert ids[:, 0, 0].tolist() == [0, 1, 2]


@pytest.mark.parametrize("agents_first", [True, False])
def test_a_shared_value_reaches_every_agent_in_either_layout(agents_first):
    layout = BatchLayout(agents_first)
    advantages = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # [T, E]
    shape = (4, 2, 3) if agents_first else (2, 3, 4)
    spread = layout.broadcast_shared(advantages, shape)
    back = jnp.moveaxis(spread, 0, -1) if agents_first else spread
    np.testing.assert_array_equal(back, np.repeat(np.asarray(advantages)[..., None], 4, -1))
    # A per-agent value already of the right rank passes through.
    per_agent = jnp.ones(shape)
    np.testing.assert_array_equal(layout.broadcast_shared(per_agent, shape), per_agent)


@pytest.mark.parametrize(
    "strategy, recurrent, expected",
    [(Prism(), False, True), (Prism(), True, False), (FuPS(), False, False)],
    ids=["prism-mlp", "prism-gru", "fups"],
)
def test_agents_first_only_where_kernels_differ_and_time_is_not_scanned_first(
    strategy, recurrent, expected
):
    assert BatchLayout.of(strategy, recurrent).agents_first is expected


def test_network_relayout_round_trips():
    x = jnp.arange(2 * 3 * 4, dtype=jnp.float32).reshape(2, 3, 4)  # [B, N, D]
    leading = AgentsFirst.of(Prism(), x, np.arange(3), 3)
    assert leading is not None
    moved, ids = leading.apply(x)
    assert moved.shape == (3, 2, 4) and ids[:, 0].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(leading.restore(moved), x)
    assert AgentsFirst.of(FuPS(), x, np.arange(3), 3) is None


_LOWER_ARRANGE = """
import jax, jax.numpy as jnp
import os
import subprocess
import sys
from typing import NamedTuple
from prism_marl.fast.layout import BatchLayout
class B(NamedTuple):
    a: jax.Array
    b: jax.Array
    c: jax.Array
    d: jax.Array
    e: jax.Array
batch = B(*(jnp.zeros((2, 3, 4, k + 1)) for k in range(5)))
arrange = lambda x: BatchLayout(True).arrange(x, frozenset("abcde"))[0]
print(jax.jit(arrange).lower(batch).as_text(debug_info=False))
"""


def test_the_relayout_lowers_to_the_same_program_in_every_process():
    """A set's iteration order follows the process's string hashes; the sweep's shared compile
    cache keys on the program text, so the moves must follow the batch's field order."""
    texts = set()
    for hash_seed in ("1", "2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", _LOWER_ARRANGE], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        texts.add(done.stdout)
    assert len(texts) == 1
