"""Episode GIFs through each adapter's renderer (host side)."""

import jax
import jax.numpy as jnp
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


@pytest.mark.slow(minutes=0.6)
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
