"""Policies and critics: the static-id (agent-major, agents-first) layout equals the per-sample
layout over every strategy, for feed-forward and recurrent, discrete and Gaussian policies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.networks.agents import Policy
from prism_marl.networks.critics import AgentCritic
from tests.sharing.cases import strategy_cases

N, D, A, T, E = 3, 5, 4, 2, 6
VARIANTS = {
    "mlp-discrete": {"action_kind": "discrete", "recurrent": False},
    "mlp-gaussian": {"action_kind": "continuous", "recurrent": False},
    "gru-discrete": {"action_kind": "discrete", "recurrent": True},
}


def assert_trees_equal(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("name", list(strategy_cases(N)))
def test_static_ids_match_per_sample_ids(name, variant):
    policy = Policy(strategy_cases(N)[name], N, A, hidden_sizes=(8, 8), **VARIANTS[variant])
    keys = jax.random.split(jax.random.key(0), 3)
    obs = jax.random.normal(keys[0], (T, E, N, D))
    mask = jax.random.bernoulli(keys[1], 0.7, (T, E, N, A)).at[..., 0].set(True)
    resets = jnp.zeros((T, E), bool).at[1, :2].set(True)
    hidden = jax.random.normal(keys[2], (E, N, policy.hidden_size))
    static, traced = np.arange(N), jnp.broadcast_to(jnp.arange(N), (T, E, N))
    variables = policy.init(jax.random.key(1), hidden, obs, static, resets, mask)
    assert_trees_equal(variables, policy.init(jax.random.key(1), hidden, obs, traced, resets, mask))
    fast = policy.apply(variables, hidden, obs, static, resets, mask)
    slow = jax.jit(lambda v, ids: policy.apply(v, hidden, obs, ids, resets, mask))(
        variables, traced
    )
    assert_trees_equal(fast, slow)


@pytest.mark.parametrize("name", ["prism", "nops", "snp"])
def test_agent_critic_static_ids_match_per_sample_ids(name):
    critic = AgentCritic(strategy_cases(N)[name], N, hidden_sizes=(8,))
    obs = jax.random.normal(jax.random.key(0), (E, N, D))
    static, traced = np.arange(N), jnp.broadcast_to(jnp.arange(N), (E, N))
    variables = critic.init(jax.random.key(1), obs, static)
    values = critic.apply(variables, obs, static)
    assert values.shape == (E, N)
    np.testing.assert_allclose(values, critic.apply(variables, obs, traced), rtol=1e-5, atol=1e-5)
