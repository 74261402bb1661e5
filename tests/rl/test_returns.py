"""GAE and PPO losses against hand-computed values."""

import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.rl.ppo import clipped_policy_loss, clipped_value_loss, normalize
from prism_marl.rl.returns import generalized_advantages, next_state_values, td_lambda_returns

GAMMA, LAM = 0.9, 0.5


def test_gae_single_episode_hand_values():
    rewards = jnp.array([1.0, 0.0, 2.0])
    values = jnp.array([0.5, 1.0, 1.5])
    next_values = jnp.array([1.0, 1.5, 9.0])  # 9.0 is ignored: the last step terminates
    terminated = jnp.array([False, False, True])
    adv, targets = generalized_advantages(
        rewards, values, next_values, terminated, terminated, GAMMA, LAM
    )
    d2 = 2.0 - 1.5
    d1 = 0.0 + 0.9 * 1.5 - 1.0
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    a2 = d2
    a1 = d1 + 0.45 * a2
    a0 = d0 + 0.45 * a1
    np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(targets, np.array([a0, a1, a2]) + values, rtol=1e-6)


def test_gae_truncation_bootstraps_but_stops_recursion():
    rewards = jnp.array([1.0, 1.0])
    values = jnp.array([0.0, 0.0])
    next_values = jnp.array([2.0, 3.0])  # step 0's next is the final obs of a truncated episode
    terminated = jnp.array([False, False])
    ends = jnp.array([True, False])
    adv, _ = generalized_advantages(rewards, values, next_values, terminated, ends, GAMMA, LAM)
    # step 0: truncated -> δ = 1 + 0.9·2, no recursion into step 1 (a new episode)
    np.testing.assert_allclose(adv, [1.0 + 1.8, 1.0 + 2.7], rtol=1e-6)
    # the same step terminated instead: no bootstrap
    adv_term, _ = generalized_advantages(
        rewards, values, next_values, jnp.array([True, False]), ends, GAMMA, LAM
    )
    np.testing.assert_allclose(adv_term, [1.0, 1.0 + 2.7], rtol=1e-6)


def test_next_state_values_uses_final_observation_at_episode_end():
    values = jnp.array([1.0, 2.0, 3.0])
    finals = jnp.array([7.0, 8.0, 9.0])
    ends = jnp.array([False, True, False])
    out = next_state_values(values, jnp.asarray(4.0), finals, ends)
    np.testing.assert_allclose(out, [2.0, 8.0, 4.0])


def test_clipped_policy_loss_hand_values():
    old = jnp.log(jnp.array([0.5, 0.5]))
    new = jnp.log(jnp.array([1.0, 0.25]))  # ratios 2.0 and 0.5
    adv = jnp.array([1.0, -1.0])
    loss, frac = clipped_policy_loss(new, old, adv, clip=0.2)
    # min(2·1, 1.2·1) = 1.2 ; min(0.5·−1, 0.8·−1) = −0.8 -> loss = −(1.2 − 0.8)/2
    assert float(loss) == pytest.approx(-0.2)
    assert float(frac) == 1.0


def test_clipped_value_loss_hand_values():
    values, old, targets = jnp.array([2.0]), jnp.array([1.0]), jnp.array([3.0])
    # unclipped (2−3)² = 1 ; clipped 1 + 0.5 = 1.5 -> (1.5−3)² = 2.25 ; max = 2.25
    assert float(clipped_value_loss(values, old, targets, 0.5)) == pytest.approx(1.125)
    assert float(clipped_value_loss(values, old, targets, None)) == pytest.approx(0.5)


def test_normalize():
    out = normalize(jnp.array([1.0, 3.0]))
    np.testing.assert_allclose(out, [-1.0, 1.0], atol=1e-6)


REWARDS = jnp.array([1.0, 0.0, 2.0, 1.0])
BOOTSTRAP = jnp.array([10.0, 20.0, 30.0, 40.0])


def test_td_lambda_hand_values_cut_at_the_sequence_end():
    none = jnp.zeros(4, bool)
    targets = td_lambda_returns(REWARDS, BOOTSTRAP, none, none, gamma=0.5, lam=0.5)
    # G3 = 1 + .5·40; G2 = 2 + .5(.5·30 + .5·G3); G1 = .5(.5·20 + .5·G2); G0 = 1 + .5(.5·10 + .5·G1)
    np.testing.assert_allclose(targets, [5.671875, 8.6875, 14.75, 21.0])
    one_step = td_lambda_returns(REWARDS, BOOTSTRAP, none, none, gamma=0.5, lam=0.0)
    np.testing.assert_allclose(one_step, [6.0, 10.0, 17.0, 21.0])


def test_td_lambda_termination_and_truncation():
    terminated = jnp.array([False, True, False, False])
    ended = jnp.array([False, True, True, False])
    targets = td_lambda_returns(REWARDS, BOOTSTRAP, terminated, ended, gamma=0.5, lam=0.5)
    # Step 1 terminates (no bootstrap); step 2 is truncated (bootstraps, recursion stops).
    np.testing.assert_allclose(targets, [3.5, 0.0, 17.0, 21.0])
