"""Canary: a one-step game only specialised agents can win.

N agents see the same observation; agent i is paid 1 only for action i. A fully shared network
without ids gives every agent the same policy π, so the team's expected reward is
mean_i π(i) = 1/N; strategies that let agents differ can reach 1. Training maximises the exact
expected reward (the policy-gradient objective without sampling noise) plus the strategy's
auxiliary loss, vmapped over seeds.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from prism_marl.networks import Policy
from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing import SNP, FuPS, FuPSID, Kaleidoscope, NoPS, Prism, SePS
from prism_marl.sharing.base import init_aux_state, update_aux_state
from tests.sharing.reference_only import Gains

NUM_AGENTS = 4
OBS = jnp.ones((NUM_AGENTS, 16))
IDS = jnp.arange(NUM_AGENTS)
# The policy is time-major and feed-forward here: one step, no recurrent state, every action.
POLICY_INPUTS = (
    jnp.zeros((NUM_AGENTS, 1)),
    OBS[None],
    IDS,
    jnp.zeros((1, NUM_AGENTS), bool),
    jnp.ones((1, NUM_AGENTS, NUM_AGENTS), bool),
)
SEEDS = 9
STEPS = 600


def expected_reward(network, variables):
    probs = jax.nn.softmax(network.apply(variables, *POLICY_INPUTS)[1][0])
    return jnp.mean(probs[IDS, IDS])


@functools.partial(jax.jit, static_argnums=0)
def train(strategy, keys):
    network = Policy(strategy, NUM_AGENTS, NUM_AGENTS, hidden_sizes=(64,))
    optimizer = optax.adam(0.01)

    def one_seed(key):
        variables = network.init(key, *POLICY_INPUTS)

        def loss_fn(params, variables, aux_state):
            full = {**variables, "params": params}
            rl_loss = -expected_reward(network, full)
            aux = strategy.aux_loss(full, aux_state)
            return rl_loss + aux.loss, (rl_loss, aux)

        def step(carry, _):
            variables, opt_state, aux_state = carry
            grads, (rl_loss, aux) = jax.grad(loss_fn, has_aux=True)(
                variables["params"], variables, aux_state
            )
            updates, opt_state = optimizer.update(grads, opt_state)
            variables = {**variables, "params": optax.apply_updates(variables["params"], updates)}
            aux_state = update_aux_state(strategy, aux_state, rl_loss, aux)
            return (variables, opt_state, aux_state), None

        carry = (variables, optimizer.init(variables["params"]), init_aux_state(strategy))
        (variables, _, _), _ = jax.lax.scan(step, carry, None, length=STEPS)
        return expected_reward(network, variables)

    return jax.vmap(one_seed)(keys)


def prepared_seps():
    """SePS prepared on transitions of the canary game under random actions."""
    rng = np.random.default_rng(0)
    steps = 500
    actions = rng.integers(0, NUM_AGENTS, size=(steps, NUM_AGENTS))
    data = AgentTransitions(  # one seed's transitions: [S = 1, P, N, ...]
        obs=jnp.broadcast_to(OBS, (1, steps, *OBS.shape)),
        actions=jax.nn.one_hot(actions, NUM_AGENTS)[None],
        rewards=jnp.asarray(actions == np.arange(NUM_AGENTS), jnp.float32)[None],
        next_obs=jnp.zeros((1, steps, *OBS.shape)),
    )
    preparation = SePS(num_clusters=NUM_AGENTS).prepare(data, jax.random.key(1))
    # The seed's clusters as a fixed table: this test's seeds all train on that one table.
    return SePS(cluster_of_agent=tuple(int(c) for c in preparation.per_seed[0]))


def median_reward(strategy):
    return float(np.median(train(strategy, jax.random.split(jax.random.key(0), SEEDS))))


def test_full_sharing_cannot_specialise():
    assert median_reward(FuPS()) < 0.4


@pytest.mark.parametrize(
    "strategy",
    [NoPS(), FuPSID(), Kaleidoscope(), Prism(mask_init_mean=0.0), SNP(), Gains()],
    # "reference-only": a strategy with no project of its own (tests/sharing/reference_only.py).
    ids=["nops", "fups-id", "kaleidoscope", "prism-masks-at-half", "snp", "reference-only"],
)
def test_specialising_strategies_win(strategy):
    assert median_reward(strategy) > 0.9


def test_prism_defaults_specialise_at_least_three_of_four_agents():
    """With its default masks (ℓ_0 = 2, m ≈ 0.88) and scaled spectrum, Prism leaves one agent on
    another agent's action (0.75, a local optimum of the exact gradient) in about half the
    seeds: 35 of 81 scaled, 19 of 81 with a plain spectrum, 4 of 81 with ℓ_0 = 0 (decision
    0034). A few seeds settle lower still (0.5, once 0.25): 2 to 6 of 81 per key on the machines
    measured, and which seeds do depends on the CPU's code generation, so the test holds the
    share, not every seed. FuPS stays at 0.25."""
    rewards = np.asarray(train(Prism(), jax.random.split(jax.random.key(0), 9 * SEEDS)))
    assert np.mean(rewards > 0.74) > 0.85
    assert rewards.mean() > 0.8


def test_seps_clusters_agents_apart_and_wins():
    strategy = prepared_seps()
    assert sorted(strategy.cluster_of_agent) == list(range(NUM_AGENTS))
    assert median_reward(strategy) > 0.9
