"""Episode GIFs through each adapter's renderer (host side)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from prism_marl.config import EnvConfig
from prism_marl.envs import make_env
from prism_marl.envs.base import RenderFrame


def play(env, steps):
    key = jax.random.PRNGKey(0)
    state, step = env.reset(key)
    frames = []
    for t in range(steps):
        step_key = jax.random.fold_in(key, t)
        actions = jax.random.categorical(step_key, jnp.where(step.action_mask, 0.0, -1e9))
        frames.append(RenderFrame(step_key, state, actions))
        state, step = env.step(step_key, state, actions)
    return frames


@pytest.mark.slow(minutes=0.2)
def test_smax_gif_replays_every_world_tick(tmp_path):
    env = make_env(EnvConfig(id="smax:3m"))
    path = tmp_path / "battle.gif"
    env.save_animation(play(env, 2), str(path))
    image = Image.open(path)
    assert image.format == "GIF"
    # Each environment step is several internal world ticks, each drawn as a frame.
    assert image.n_frames > 2 * env._env.world_steps_per_env_step


@pytest.mark.slow(minutes=0.6)
def test_lbf_gif_animates_the_steps(tmp_path):
    for rules in ("lbforaging", "jumanji"):
        env = make_env(EnvConfig(id="lbf:8x8-2p-2f-coop", lbf_rules=rules))
        path = tmp_path / f"{rules}.gif"
        env.save_animation(play(env, 6), str(path))
        image = Image.open(path)
        # One frame per step; Pillow merges consecutive identical frames (nobody moved).
        assert image.format == "GIF" and 1 < image.n_frames <= 6


@pytest.fixture(scope="module")
def smax_3m():
    return make_env(EnvConfig(id="smax:3m"))


def test_smax_shots_follow_jaxmarls_targeting(smax_3m):
    """3m: allies 0-2, enemies 3-5, M = 5 movement actions, marines' range 5."""
    from prism_marl.envs.smax_render import Tick, shots

    env = smax_3m._env
    assert (env.num_allies, env.num_movement_actions) == (3, 5)
    positions = np.array([[10.0, 10], [10, 12], [30, 30], [13, 10], [10, 15], [11, 12]])
    attacks = np.array([5, 6, 7, 0, 6, 8])  # ally 0 -> 3, ally 1 -> 4, ally 2 -> 5 (too far)
    alive = np.ones(6, bool)
    tick = Tick(positions, alive, np.zeros(6, np.int64), attacks, 0, 0.5)
    # enemy 4 (a = 6) -> ally 3 - 1 - 1 = 1; enemy 5 (a = 8) -> ally 3 - 1 - 3 = -1: none.
    assert shots(env, tick) == [(0, 3), (1, 4), (4, 1)]
    alive[4] = False
    assert shots(env, tick._replace(alive=alive)) == [(0, 3)]


def test_smax_ticks_are_each_steps_start_and_its_world_ticks(smax_3m):
    from prism_marl.envs.smax_render import expand_ticks

    env = smax_3m._env
    frames = play(smax_3m, 2)
    sequence = [
        (f.key, f.state, {a: f.action[i] for i, a in enumerate(smax_3m.agents)}) for f in frames
    ]
    ticks = expand_ticks(env, sequence)
    per_step = env.world_steps_per_env_step + 1
    assert [t.env_step for t in ticks] == [0] * per_step + [1] * per_step
    assert [t.fraction for t in ticks[:per_step]] == [
        j / env.world_steps_per_env_step for j in range(per_step)
    ]
    np.testing.assert_array_equal(ticks[0].positions, frames[0].state.state.unit_positions)
    # The last tick of step 0 is the state step 1 starts from.
    np.testing.assert_allclose(
        ticks[per_step - 1].positions, frames[1].state.state.unit_positions, atol=1e-5
    )
