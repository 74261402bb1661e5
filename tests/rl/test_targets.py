"""n-step returns and target policy smoothing against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.rl.targets import n_step_returns, smoothed_target_actions

GAMMA = 0.9
F, T = False, True

# Columns are independent windows of n = 3 steps with rewards 1, 2, 3:
# (terminated flags, truncated flags, reward sum, bootstrap discount, last step).
CASES = [
    ("no end", [F, F, F], [F, F, F], 1 + 0.9 * 2 + 0.81 * 3, 0.729, 2),
    ("terminated at 1", [F, T, F], [F, F, F], 1 + 0.9 * 2, 0.0, 1),
    ("truncated at 1", [F, F, F], [F, T, F], 1 + 0.9 * 2, 0.81, 1),
    ("terminated at 0", [T, F, F], [F, F, F], 1.0, 0.0, 0),
    ("truncated at 0", [F, F, F], [T, F, T], 1.0, 0.9, 0),
    ("terminated at 2", [F, F, T], [F, F, F], 1 + 0.9 * 2 + 0.81 * 3, 0.0, 2),
    ("truncated at 2", [F, F, F], [F, F, T], 1 + 0.9 * 2 + 0.81 * 3, 0.729, 2),
]


def test_n_step_returns_hand_values_at_episode_ends():
    terminated = jnp.array([c[1] for c in CASES]).T  # [n, windows]
    truncated = jnp.array([c[2] for c in CASES]).T
    rewards = jnp.broadcast_to(jnp.array([1.0, 2.0, 3.0])[:, None], terminated.shape)
    out = n_step_returns(rewards, terminated, terminated | truncated, GAMMA)
    np.testing.assert_allclose(out.reward_sum, [c[3] for c in CASES], rtol=1e-6)
    np.testing.assert_allclose(out.discount, [c[4] for c in CASES], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(out.last, [c[5] for c in CASES])


def test_one_step_return_is_the_td3_target_and_batch_axes_are_kept():
    rewards = jnp.arange(6.0).reshape(1, 2, 3)
    terminated = jnp.array([[[F, T, F], [F, F, T]]])
    out = n_step_returns(rewards, terminated, terminated, GAMMA)
    assert out.reward_sum.shape == (2, 3) and out.last.shape == (2, 3)
    np.testing.assert_allclose(out.reward_sum, rewards[0])
    np.testing.assert_allclose(out.discount, np.where(terminated[0], 0.0, GAMMA))
    np.testing.assert_array_equal(out.last, 0)


def test_target_from_n_step_parts_matches_a_brute_force_recursion():
    rng = np.random.default_rng(0)
    n, batch = 4, 64
    rewards = rng.normal(size=(n, batch)).astype(np.float32)
    ends = rng.random((n, batch)) < 0.3
    terminated = ends & (rng.random((n, batch)) < 0.5)
    next_values = rng.normal(size=(n, batch)).astype(np.float32)
    out = n_step_returns(jnp.asarray(rewards), jnp.asarray(terminated), jnp.asarray(ends), GAMMA)
    target = out.reward_sum + out.discount * next_values[out.last, np.arange(batch)]
    # G_k = r_k + γ (1 − term_k) (end_k ? V'_k : G_{k+1}), with G_n bootstrapped at V'_{n−1}.
    expected = rewards[-1] + GAMMA * (1 - terminated[-1]) * next_values[-1]
    for k in range(n - 2, -1, -1):
        follow = np.where(ends[k], next_values[k], expected)
        expected = rewards[k] + GAMMA * (1 - terminated[k]) * follow
    np.testing.assert_allclose(target, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("low", "high"), [(-1.0, 1.0), (-2.0, 2.0), (0.0, 1.0)])
def test_smoothing_noise_is_clipped_and_actions_stay_in_the_box(low, high):
    half = (high - low) / 2
    centre = (low + high) / 2
    mask = jnp.array([[True, True, False]] * 4)  # agents with two real dims, one padded
    actions = jnp.where(mask, centre, 0.0)
    actions = jnp.broadcast_to(actions, (2000, 4, 3))
    out = smoothed_target_actions(actions, jax.random.PRNGKey(0), 0.2, 0.5, low, high, mask)
    real = np.asarray(out)[:, mask]
    noise = real - centre
    assert np.all(np.abs(noise) <= 0.5 * half + 1e-6)
    assert np.abs(noise).max() == pytest.approx(0.5 * half, rel=1e-5)  # the clip binds
    assert np.std(noise) == pytest.approx(0.2 * half, rel=0.1)
    np.testing.assert_array_equal(np.asarray(out)[:, ~mask], 0.0)
    # At the box's edge the noisy action is clipped back into the box.
    edge = jnp.where(mask, high, 0.0)
    edge_out = smoothed_target_actions(
        jnp.broadcast_to(edge, (2000, 4, 3)), jax.random.PRNGKey(1), 0.2, 0.5, low, high, mask
    )
    assert np.all((np.asarray(edge_out) >= low) & (np.asarray(edge_out) <= high))
    assert np.asarray(edge_out)[:, mask].min() < high  # noise did move some actions
