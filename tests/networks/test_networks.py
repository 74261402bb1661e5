"""Torsos and heads over every strategy; distributions against hand values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.networks import DeterministicHead, Policy
from prism_marl.networks.heads import (
    MASKED_LOGIT,
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
)
from prism_marl.sharing import FuPS, NoPS, Prism
from tests.sharing.cases import strategy_cases

N, D, A = 3, 5, 4
CASES = list(strategy_cases(N)) + ["prism-spectral-gru"]


def case(name):
    if name == "prism-spectral-gru":
        return Prism(spectral_gru=True)
    return strategy_cases(N)[name]


@pytest.mark.parametrize("name", CASES)
def test_mlp_actor_masks_actions(name):
    actor = Policy(case(name), N, A, hidden_sizes=(8, 8))
    obs = jax.random.normal(jax.random.key(0), (1, 2, N, D))
    mask = jnp.broadcast_to(jnp.array([True, False, True, True]), (1, 2, N, A))
    inputs = (jnp.zeros((2, N, 1)), obs, np.arange(N), jnp.zeros((1, 2, N), bool), mask)
    variables = actor.init(jax.random.key(1), *inputs)
    logits = actor.apply(variables, *inputs)[1][0]
    assert logits.shape == (2, N, A)
    np.testing.assert_array_equal(logits[..., 1], MASKED_LOGIT)
    assert np.all(np.asarray(logits[..., [0, 2, 3]]) > MASKED_LOGIT / 2)


@pytest.mark.parametrize("name", CASES)
def test_recurrent_actor_resets_hidden_state(name):
    actor = Policy(case(name), N, A, hidden_sizes=(8, 6), recurrent=True)
    obs = jax.random.normal(jax.random.key(0), (3, 2, N, D))
    ids = jnp.arange(N)
    h0 = jnp.zeros((2, N, 6))
    resets = jnp.zeros((3, 2, N), bool).at[2].set(True)
    mask = jnp.ones((3, 2, N, A), bool)
    variables = actor.init(jax.random.key(1), h0, obs, ids, resets, mask)
    hidden, logits = actor.apply(variables, h0, obs, ids, resets, mask)
    assert hidden.shape == (2, N, 6) and logits.shape == (3, 2, N, A)
    # Step 2 starts a new episode: it must equal running that step alone from zeros.
    _, alone = actor.apply(variables, h0, obs[2:], ids, resets[2:], mask[2:])
    np.testing.assert_allclose(logits[2], alone[0], atol=1e-5)
    # Without the reset, history matters.
    _, carried = actor.apply(variables, h0, obs, ids, jnp.zeros_like(resets), mask)
    assert not np.allclose(carried[2], alone[0], atol=1e-4)


def test_recurrent_kernels_follow_the_strategy():
    obs = jnp.ones((1, 1, N, D))
    h0 = jnp.zeros((1, N, 6))
    resets = jnp.zeros((1, 1, N), bool)

    def recurrent_params(strategy):
        actor = Policy(strategy, N, A, hidden_sizes=(8, 6), recurrent=True)
        mask = jnp.ones((1, 1, N, A), bool)
        params = actor.init(jax.random.key(0), h0, obs, jnp.arange(N), resets, mask)["params"]
        return params["torso"]["gru"]["cell"]["recurrent_kernels"]

    assert recurrent_params(NoPS())["group_kernel"].shape == (N, 6, 18)
    assert recurrent_params(FuPS())["kernel"].shape == (6, 18)
    assert "kernel" in recurrent_params(Prism())
    assert recurrent_params(Prism(spectral_gru=True))["mask_logits"].shape == (N, 6)


def test_deterministic_head_stays_in_box():
    head = DeterministicHead(FuPS(), N, A, low=-0.4, high=2.0)
    features = 100.0 * jax.random.normal(jax.random.key(0), (50, N, 8))
    variables = head.init(jax.random.key(1), features, jnp.arange(N))
    actions = np.asarray(head.apply(variables, features, jnp.arange(N)))
    assert actions.min() >= -0.4 and actions.max() <= 2.0


def test_categorical_distribution_hand_values():
    logits = jnp.array([jnp.log(0.5), jnp.log(0.5), MASKED_LOGIT])
    assert float(categorical_log_prob(logits, jnp.array(1))) == pytest.approx(np.log(0.5))
    assert float(categorical_entropy(logits)) == pytest.approx(np.log(2.0), rel=1e-6)


def test_gaussian_distribution_hand_values():
    mean, log_std = jnp.zeros(2), jnp.log(jnp.array([1.0, 2.0]))
    action = jnp.array([1.0, 2.0])
    # log N(1; 0, 1) + log N(2; 0, 4) = −½ − ½log2π + (−½ − log 2 − ½log2π)
    expected = -1.0 - np.log(2.0) - np.log(2 * np.pi)
    assert float(gaussian_log_prob(mean, log_std, action)) == pytest.approx(expected, rel=1e-6)
    expected_entropy = np.log(2.0) + np.log(2 * np.pi * np.e)
    assert float(gaussian_entropy(log_std)) == pytest.approx(expected_entropy, rel=1e-6)
