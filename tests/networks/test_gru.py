"""The hand-written GRU backward pass against JAX's own differentiation of the same scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.networks import GRUTorso
from prism_marl.networks.gru import gru_step, gru_unroll
from prism_marl.sharing import STRATEGIES

T, B, N, H = 7, 3, 2, 5


def per_agent_layer(variables, h, ids):
    """c = h W_id + b_id: a per-agent affine layer, h [..., H], ids [...]."""
    kernel, bias = variables["params"]["kernel"][ids], variables["params"]["bias"][ids]
    return jnp.einsum("...h,...hk->...k", h, kernel) + bias


def reference_unroll(variables, from_input, ids, starts, hidden):
    """The same recurrence as a plain scan, differentiated by JAX."""

    def step(h, xs):
        a, ids_t, start = xs
        h = jnp.where(start[..., None], 0.0, h)
        new, _ = gru_step(tuple(jnp.split(a, 3, -1)), per_agent_layer(variables, h, ids_t), h)
        return new, new

    return jax.lax.scan(step, hidden, (from_input, ids, starts))[1]


@pytest.fixture(scope="module")
def problem():
    keys = jax.random.split(jax.random.key(0), 6)
    variables = {
        "params": {
            "kernel": jax.random.normal(keys[0], (N, H, 3 * H)),
            "bias": jax.random.normal(keys[1], (N, 3 * H)),
        }
    }
    from_input = jax.random.normal(keys[2], (T, B, N, 3 * H))
    ids = jnp.broadcast_to(jnp.arange(N), (T, B, N))
    # Resets inside the sequence, including the first step of one row.
    starts = jnp.zeros((T, B, N), bool).at[3, 0].set(True).at[0, 2].set(True)
    hidden = jax.random.normal(keys[3], (B, N, H))
    weights = jax.random.normal(keys[4], (T, B, N, H))
    return variables, from_input, ids, starts, hidden, weights


def test_values_and_gradients_equal_autodiff_of_the_plain_scan(problem):
    variables, from_input, ids, starts, hidden, weights = problem

    def loss(unroll):
        def f(variables, from_input, hidden):
            out = unroll(variables, from_input, ids, starts, hidden)
            return jnp.sum(jnp.tanh(out) * weights)

        return f

    ours = lambda *a: gru_unroll(per_agent_layer, *a)  # noqa: E731
    np.testing.assert_allclose(
        ours(variables, from_input, ids, starts, hidden),
        reference_unroll(variables, from_input, ids, starts, hidden),
        rtol=1e-6,
        atol=1e-6,
    )
    got = jax.grad(loss(ours), argnums=(0, 1, 2))(variables, from_input, hidden)
    want = jax.grad(loss(reference_unroll), argnums=(0, 1, 2))(variables, from_input, hidden)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    # A reset cuts the gradient to the state before it: row 2 resets at step 0.
    assert np.all(np.asarray(got[2][2]) == 0.0)
    assert np.any(np.asarray(got[2][1]) != 0.0)


@pytest.mark.parametrize("name", ["nops", "prism"])
def test_static_and_traced_agent_ids_give_the_same_gradients(name):
    """Agent-major products (static ids) and per-sample products (traced ids) agree."""
    strategy = STRATEGIES[name](spectral_gru=True) if name == "prism" else STRATEGIES[name]()
    torso = GRUTorso(strategy, N, input_size=4, hidden_size=H)
    obs = jax.random.normal(jax.random.key(1), (T, B, N, 3))
    starts = jnp.zeros((T, B), bool).at[4, 1].set(True)
    hidden = jnp.zeros((B, N, H))
    static = np.arange(N)
    variables = torso.init(jax.random.key(2), hidden, obs, static, starts)

    def loss(params, ids):
        _, out = torso.apply({**variables, "params": params}, hidden, obs, ids, starts)
        return jnp.sum(out**2)

    traced = jnp.broadcast_to(jnp.arange(N), (T, B, N))
    by_static = jax.grad(loss)(variables["params"], static)
    by_traced = jax.grad(loss)(variables["params"], traced)
    recurrent = by_static["gru"]["cell"]["recurrent_kernels"]
    assert any(np.any(np.asarray(leaf) != 0.0) for leaf in jax.tree.leaves(recurrent))
    for a, b in zip(jax.tree.leaves(by_static), jax.tree.leaves(by_traced), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)


def test_state_mask_values_and_gradients_equal_autodiff_of_the_masked_scan(problem):
    """h' ← m ⊙ h' every step: the hand-written backward pass applies m to g first."""
    variables, from_input, ids, starts, hidden, weights = problem
    mask = jax.random.bernoulli(jax.random.key(9), 0.6, (B, N, H)).astype(jnp.float32)
    masks = jnp.broadcast_to(mask, (T, B, N, H))

    def reference(variables, from_input, hidden):
        def step(h, xs):
            a, ids_t, start = xs
            h = jnp.where(start[..., None], 0.0, h)
            layer = per_agent_layer(variables, h, ids_t)
            new, _ = gru_step(tuple(jnp.split(a, 3, -1)), layer, h)
            return new * mask, new * mask

        return jax.lax.scan(step, hidden, (from_input, ids, starts))[1]

    def ours(variables, from_input, hidden):
        return gru_unroll(per_agent_layer, variables, from_input, ids, starts, hidden, masks)

    def loss(unroll):
        return lambda *a: jnp.sum(jnp.tanh(unroll(*a)) * weights)

    args = (variables, from_input, hidden)
    out = ours(*args)
    np.testing.assert_allclose(out, reference(*args), rtol=1e-6, atol=1e-6)
    assert np.all(np.asarray(out)[:, mask == 0] == 0.0)
    got = jax.grad(loss(ours), argnums=(0, 1, 2))(*args)
    want = jax.grad(loss(reference), argnums=(0, 1, 2))(*args)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_snp_prunes_gru_units_whose_state_stays_zero():
    """SNP's pruned GRU unit: zero state at every step; the GRU's kernels are not masked."""
    strategy = STRATEGIES["snp"](prune_ratio=0.5)
    torso = GRUTorso(strategy, N, input_size=4, hidden_size=H)
    obs = jax.random.normal(jax.random.key(1), (T, B, N, 3))
    starts = jnp.zeros((T, B), bool)
    hidden = jnp.zeros((B, N, H))
    for ids in (np.arange(N), jnp.broadcast_to(jnp.arange(N), (T, B, N))):
        variables = torso.init(jax.random.key(2), hidden, obs, ids, starts)
        buffers = variables["buffers"]
        assert set(buffers) == {"dense_0", "state_mask"}  # input_kernels are plain shared
        unit_mask = np.asarray(buffers["state_mask"]["neuron_mask"])  # [N, H]
        assert 0 < unit_mask.sum() < unit_mask.size
        last, out = torso.apply(variables, hidden, obs, ids, starts)
        out = np.asarray(out)  # [T, B, N, H]
        pruned = np.broadcast_to(unit_mask == 0, out.shape)
        assert np.all(out[pruned] == 0.0)
        # Every kept unit moves at some step (a step may be exactly 0 where relu zeroed the
        # whole input and the state was 0).
        assert np.all(np.abs(out).max(axis=(0, 1))[unit_mask == 1] > 0)
        np.testing.assert_array_equal(np.asarray(last), out[-1])
