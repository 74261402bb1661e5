"""SMAX adapter: the world state handed to mixers and centralised critics is normalised."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.config import EnvConfig
from prism_marl.envs import make_env
from prism_marl.errors import ConfigError


def test_world_state_is_scaled_like_the_observations():
    env = make_env(EnvConfig(id="smax:3m"))
    inner = env._env._env
    step_fn = jax.jit(env.step)
    state, step = env.reset(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    # Move east then attack until cooldowns run (jaxmarl's raw cooldowns go negative).
    for action in [1] * 12 + [5] * 6:
        key, step_key = jax.random.split(key)
        state, step = step_fn(step_key, state, jnp.full((3,), action))
    world = np.asarray(step.global_state)
    assert world.shape == (env.spec.state_size,)
    assert world.min() >= 0.0 and world.max() <= 1.0

    units, features = inner.num_agents, len(inner.own_features)
    per_unit = world[: units * features].reshape(units, features)
    raw = state.state
    alive = np.asarray(raw.unit_alive)
    positions = np.asarray(raw.unit_positions) / [inner.map_width, inner.map_height]
    np.testing.assert_allclose(per_unit[alive, 1:3], positions[alive], rtol=1e-6)
    type_cooldown = np.asarray(inner.unit_type_weapon_cooldowns)[np.asarray(raw.unit_types)]
    cooldown = np.clip(np.asarray(raw.unit_weapon_cooldowns) / type_cooldown, 0, 1)
    np.testing.assert_allclose(per_unit[alive, 3], cooldown[alive], rtol=1e-6)
    assert np.all(per_unit[~alive] == 0)
    # 3m: every unit a marine (type 0), allies team 0, enemies team 1.
    np.testing.assert_array_equal(world[units * features :], [0, 0, 0, 1, 1, 1] + [0] * units)


def test_marine_battles_of_any_size_are_built_from_the_name():
    env = make_env(EnvConfig(id="smax:7m_vs_9m"))
    inner = env._env._env
    assert (env.spec.num_agents, inner.num_enemies) == (7, 9)
    assert env.spec.num_actions == 5 + 9  # stop and four moves, then one attack per enemy
    state, step = env.reset(jax.random.PRNGKey(0))
    assert np.all(np.asarray(state.state.unit_types) == 0), "every unit a marine"
    assert step.obs.shape == (7, env.spec.obs_size)
    # SMAC's fixed-size marine maps keep jaxmarl's own definitions.
    assert make_env(EnvConfig(id="smax:8m")).spec.num_agents == 8


@pytest.mark.parametrize("name", ["smax:0m_vs_4m", "smax:600m_vs_600m", "smax:4m_vs_4z"])
def test_bad_marine_battles_stop_on_one_line(name):
    with pytest.raises(ConfigError, match="smax:") as caught:
        make_env(EnvConfig(id=name))
    assert "\n" not in str(caught.value)
