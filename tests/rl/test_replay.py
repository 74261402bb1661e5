"""The circular replay: wrap-around writes, uniform items, n-step windows of one environment."""

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.algos.matd3 import Transition
from prism_marl.rl.replay import Replay, empty_replay, replay_add, replay_sample, replay_windows

N, D, A, S = 3, 5, 2, 4


def test_replay_insert_wraps_around():
    replay = Replay(jnp.zeros((3,)), jnp.asarray(2), jnp.asarray(2))
    replay = replay_add(replay, jnp.array([7.0, 8.0]))
    np.testing.assert_array_equal(replay.data, [8.0, 0.0, 7.0])
    assert int(replay.position) == 1 and int(replay.filled) == 3


def test_empty_replay_has_the_template_shapes_and_samples_only_filled_items():
    replay = empty_replay({"x": jnp.zeros((2,), jnp.int32)}, capacity=5)
    assert replay.data["x"].shape == (5, 2) and replay.data["x"].dtype == jnp.int32
    replay = replay_add(replay, {"x": jnp.array([[1, 1], [2, 2]], jnp.int32)})
    drawn = np.asarray(replay_sample(replay, jax.random.PRNGKey(0), 256)["x"])
    assert drawn.shape == (256, 2) and set(drawn[:, 0]) == {1, 2}


def empty_buffer(rows, envs):
    def zeros(*shape, dtype=jnp.float32):
        return jnp.zeros((rows, envs, *shape), dtype)

    data = Transition(
        obs=zeros(N, D),
        action_mask=zeros(N, A, dtype=bool),
        global_state=zeros(S),
        action=zeros(N, A),
        reward=zeros(),
        terminated=zeros(dtype=bool),
        episode_end=zeros(dtype=bool),
        next_obs=zeros(N, D),
        next_global_state=zeros(S),
    )
    return Replay(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def rollout_rows(start, length, envs):
    """Rows whose reward encodes (time step, env): 100·t + e."""
    buffer = empty_buffer(length, envs)
    t = jnp.arange(start, start + length, dtype=jnp.float32)[:, None]
    reward = 100.0 * t + jnp.arange(envs, dtype=jnp.float32)[None]
    return buffer.data._replace(reward=reward)


def test_replay_wraps_around_and_samples_consecutive_steps_of_one_env():
    buffer = empty_buffer(rows=10, envs=3)
    for chunk in range(4):  # 16 rows into 10: the oldest 6 are overwritten
        buffer = replay_add(buffer, rollout_rows(4 * chunk, 4, 3))
    assert int(buffer.filled) == 10 and int(buffer.position) == 6
    window = replay_windows(buffer, jax.random.PRNGKey(0), 512, 3)
    reward = np.asarray(window.reward)  # [n, B]
    steps, envs = reward // 100, reward % 100
    np.testing.assert_array_equal(np.diff(steps, axis=0), 1)  # consecutive time steps
    np.testing.assert_array_equal(envs, np.broadcast_to(envs[:1], envs.shape))  # of one env
    assert steps.min() == 6 and steps.max() == 15  # only the 10 rows still held
    assert set(steps[0]) == set(range(6, 14))  # every start with two newer rows
