"""SND: distances against hand-computed values, and on real networks: identical agents give 0,
different ones more; not defined where agents' observation layouts differ."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.envs.base import EnvSpec
from prism_marl.rl.diversity import mean_over_pairs, pairwise_distances, system_neural_diversity
from prism_marl.run import build_algorithm
from prism_marl.sharing import FuPS, NoPS
from tests.conftest import tiny_config

ALL = jnp.ones((2, 3), bool)


def test_categorical_is_total_variation():
    # p_0 = (1/2, 1/2, 0), p_1 = (3/4, 1/4, 0): TV = (1/4 + 1/4) / 2.
    logits = jnp.array([[0.0, 0.0, 5.0], [np.log(3.0), 0.0, 9.0]])
    mask = jnp.array([[True, True, False], [True, True, False]])
    d = pairwise_distances(logits, "categorical", mask)
    np.testing.assert_allclose(d, [[0, 0.25], [0.25, 0]], atol=1e-6)


def test_greedy_is_disagreement_among_available_actions():
    q = jnp.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    np.testing.assert_allclose(pairwise_distances(q, "greedy", ALL), [[0, 1], [1, 0]])
    without_action_1 = jnp.array([[True, False, True], [True, False, True]])
    np.testing.assert_allclose(pairwise_distances(q, "greedy", without_action_1), 0)


def test_gaussian_is_wasserstein_2_over_shared_dimensions():
    mean = jnp.array([[0.0, 0.0], [3.0, 4.0]])
    log_std = jnp.log(jnp.array([[1.0, 1.0], [2.0, 1.0]]))
    both = jnp.ones((2, 2), bool)
    d = pairwise_distances((mean, log_std), "gaussian", both)
    np.testing.assert_allclose(d[0, 1], np.sqrt(9 + 16 + 1), rtol=1e-6)  # means, then stds
    first_only = jnp.array([[True, True], [True, False]])  # agent 1 does not use dim 1
    d = pairwise_distances((mean, log_std), "gaussian", first_only)
    np.testing.assert_allclose(d[0, 1], np.sqrt(9 + 1), rtol=1e-6)


def test_deterministic_is_the_distance_between_actions():
    actions = jnp.array([[0.0, 0.0], [3.0, 4.0]])
    d = pairwise_distances(actions, "deterministic", jnp.ones((2, 2), bool))
    np.testing.assert_allclose(d, [[0, 5], [5, 0]])


def test_mean_over_pairs():
    d = jnp.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    assert float(mean_over_pairs(d)) == pytest.approx(2.0)
    assert float(mean_over_pairs(jnp.zeros((1, 1)))) == 0.0


def snd_of(tmp_path, algo, strategy):
    config = tiny_config(tmp_path, algo=algo, sharing=strategy)
    actor = build_algorithm(config)
    variables = jax.jit(actor.init)(jax.random.PRNGKey(0)).variables
    return float(
        jax.jit(lambda v: system_neural_diversity(actor, v, jax.random.PRNGKey(1), 2))(variables)
    )


@pytest.mark.parametrize("algo", ["mappo", "qmix"])
def test_identical_agents_have_zero_snd_and_separate_networks_more(tmp_path, algo):
    """FuPS without agent ids is one function for every agent: SND 0, also for QMIX's GRU
    agents unrolled over the same observation histories. NoPS's agents have independently
    drawn weights: SND > 0 (TV distance, at most 1)."""
    assert snd_of(tmp_path, algo, FuPS(agent_id_input=False)) == pytest.approx(0.0, abs=1e-6)
    separate = snd_of(tmp_path, algo, NoPS())
    assert 0.0 < separate <= 1.0


class HeterogeneousStub:
    """Only a spec: agents with different observation layouts (as on MaBrax)."""

    spec = dataclasses.replace(EnvSpec("stub", 3, 4, 2, 5, "continuous", 10), homogeneous=False)


def test_snd_is_not_defined_when_observation_layouts_differ():
    snd = system_neural_diversity(HeterogeneousStub(), None, jax.random.PRNGKey(0), 2)
    assert np.isnan(float(snd))
