"""Policies and critics: the static-id (agent-major, agents-first) layout equals the per-sample
layout over every strategy, for feed-forward and recurrent, discrete and Gaussian policies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.networks.agents import Policy
from prism_marl.networks.heads import MASKED_LOGIT
from prism_marl.networks.policy import AgentCritic, output_spread
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


def test_output_spread_hand_values():
    # Discrete: spreads 3 − (−1) = 4 and 2 − 0 = 2 (the masked logit is left out): mean 3.
    logits = jnp.array([[3.0, -1.0, 0.5], [2.0, 0.0, MASKED_LOGIT]])
    assert float(output_spread(logits, jnp.ones((2, 3), bool), "discrete")) == pytest.approx(3.0)
    # Continuous: |μ| / σ over real dimensions: |2| / e^0 and |−1| / e^{log 0.5} -> (2 + 2) / 2.
    mean = jnp.array([[2.0, -1.0, 9.0]])
    log_std = jnp.log(jnp.array([[1.0, 0.5, 1.0]]))
    mask = jnp.array([True, True, False])
    assert float(output_spread((mean, log_std), mask, "continuous")) == pytest.approx(2.0)
