"""SePS preparation: k-means, Davies–Bouldin and recovery of planted agent clusters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing import SePS
from prism_marl.sharing.clustering import (
    choose_clusters,
    davies_bouldin,
    kmeans,
)


def test_kmeans_separates_obvious_groups_and_relabels_by_first_appearance():
    points = np.array([[10.0, 0], [0, 0], [0.1, 0], [10.1, 0], [0, 0.1]])
    labels, inertia = kmeans(points, 2, seed=0)
    np.testing.assert_array_equal(labels, [0, 1, 1, 0, 1])
    # {10, 10.1}: 2·0.05² = 0.005; {(0,0), (0.1,0), (0,0.1)} around (1/30, 1/30): 0.04/3.
    assert inertia == pytest.approx(0.005 + 0.04 / 3, rel=1e-6)


def test_davies_bouldin_hand_value():
    # Two clusters on a line: {0, 2} (centre 1, scatter 1) and {10, 12} (centre 11, scatter 1);
    # DB = mean over both of (1 + 1) / 10 = 0.2.
    points = np.array([[0.0], [2.0], [10.0], [12.0]])
    assert davies_bouldin(points, np.array([0, 0, 1, 1])) == pytest.approx(0.2)


def test_choose_clusters_picks_planted_k():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [5, 5], [0, 8]])
    points = np.concatenate([c + 0.1 * rng.normal(size=(4, 2)) for c in centres])
    labels = choose_clusters(points, None, seed=1)
    assert labels == (0,) * 4 + (1,) * 4 + (2,) * 4


def planted_transitions(groups, steps=2000, obs_size=4, num_actions=3, seed=0):
    """Each group has its own dynamics shift and its own rewarded action."""
    rng = np.random.default_rng(seed)
    num_agents = len(groups)
    obs = rng.normal(size=(steps, num_agents, obs_size)).astype(np.float32)
    actions = rng.integers(0, num_actions, size=(steps, num_agents))
    group = np.asarray(groups)
    shift = np.eye(obs_size)[group] * 2.0  # [N, D]
    next_obs = obs + shift[None]
    rewards = (actions == group[None] % num_actions).astype(np.float32)
    return AgentTransitions(
        jnp.asarray(obs),
        jax.nn.one_hot(actions, num_actions),
        jnp.asarray(rewards),
        jnp.asarray(next_obs),
    )


def seeds(*datasets):
    """Transitions of several seeds stacked on a leading seed axis, as the runner hands them."""
    return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *datasets)


def test_seps_recovers_planted_clusters():
    groups = (0, 1, 2, 0, 1, 2)
    strategy = SePS()
    assert strategy.preparation_steps
    preparation = strategy.prepare(seeds(planted_transitions(groups)), jax.random.key(0))
    assert not preparation.strategy.preparation_steps
    assert preparation.strategy.prepared_clusters == 3
    np.testing.assert_array_equal(preparation.per_seed, [groups])
    assert preparation.record == {"cluster_of_agent": [list(groups)]}


def test_seps_clusters_each_seed_from_its_own_data():
    """Seeds whose agents behave differently get different clusters (pooling them gave every
    seed one table), and the program has as many networks as the seed with the most."""
    first, second = (0, 0, 0, 1, 1, 1), (0, 1, 0, 1, 0, 1)
    data = seeds(planted_transitions(first, seed=0), planted_transitions(second, seed=1))
    preparation = SePS().prepare(data, jax.random.key(0))
    np.testing.assert_array_equal(preparation.per_seed, [first, second])
    assert preparation.strategy.prepared_clusters == 2
    three = (0, 1, 2, 0, 1, 2)
    data = seeds(planted_transitions(first, seed=0), planted_transitions(three, seed=1))
    preparation = SePS().prepare(data, jax.random.key(0))
    np.testing.assert_array_equal(preparation.per_seed, [first, three])
    assert preparation.strategy.prepared_clusters == 3


def test_davies_bouldin_gives_singletons_the_mean_spread():
    # {0, 2}: scatter 1, centre 1; {10}: singleton takes scatter 1; DB = (2/9 + 2/9) / 2.
    points = np.array([[0.0], [2.0], [10.0]])
    assert davies_bouldin(points, np.array([0, 0, 1])) == pytest.approx(2 / 9)
