"""LBF under jumanji rules: the uniform generator covers every free cell; jumanji's does not."""

import jax
import numpy as np
import pytest

from prism_marl.config import EnvConfig
from prism_marl.envs.base import RenderFrame
from prism_marl.envs.lbf import LBFEnv, LBFTask
from prism_marl.errors import ConfigError


def start_states(generator, count=4000):
    env = LBFEnv("8x8-2p-2f-coop", rules="jumanji", generator=generator)
    generate = env._backend._env._generator
    states = jax.jit(jax.vmap(generate))(jax.random.split(jax.random.PRNGKey(0), count))
    return np.asarray(states.agents.position), np.asarray(states.food_items.position)


def test_uniform_generator_places_agents_on_every_free_cell():
    agents, foods = start_states("uniform")
    visited = np.zeros((8, 8), bool)
    visited[agents[..., 0].ravel(), agents[..., 1].ravel()] = True
    assert visited.all()
    on_food = (agents[:, :, None, :] == foods[:, None, :, :]).all(-1)
    assert not on_food.any()
    shares_row = [
        (set(a[:, 0]) & set(f.ravel())) != set() for a, f in zip(agents, foods, strict=True)
    ]
    assert 0.2 < np.mean(shares_row) < 0.8


def test_jumanji_generator_row_bias_is_what_the_option_keeps():
    agents, foods = start_states("jumanji", 1000)
    shares_row = [
        (set(a[:, 0]) & set(f.ravel())) != set() for a, f in zip(agents, foods, strict=True)
    ]
    assert np.mean(shares_row) == 0.0


@pytest.mark.parametrize(
    ("name", "needle"),
    [("8x8-2p", "expected"), ("8x9-2p-2f", "square"), ("6x6-2p-9f", "cannot place")],
)
@pytest.mark.parametrize("rules", ["lbforaging", "jumanji"])
def test_bad_lbf_tasks(name, needle, rules):
    with pytest.raises(ConfigError, match=needle):
        LBFTask.parse(name, rules)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rules": "gym"}, "env.lbf-rules"),
        ({"generator": "jumanji"}, "env.lbf-generator"),
        ({"rules": "jumanji", "penalty": 0.1}, "env.lbf-rules"),
        ({"penalty": -1.0}, "env.lbf-penalty"),
    ],
)
def test_bad_lbf_switches(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        LBFEnv("8x8-2p-2f-coop", **kwargs)


def test_env_config_names_the_rules_field():
    with pytest.raises(ConfigError, match="env.lbf-rules: must be one of lbforaging, jumanji"):
        EnvConfig(lbf_rules="gym")


def test_lbforaging_rules_save_an_animation(tmp_path):
    env = LBFEnv("8x8-2p-2f-coop")
    state, _ = jax.jit(env.reset)(jax.random.PRNGKey(0))
    key, action = jax.random.PRNGKey(1), np.array([1, 2])
    frames = [RenderFrame(key, state, action)]
    frames.append(RenderFrame(key, jax.jit(env.step)(key, state, action)[0], action))
    env.save_animation(frames, str(tmp_path / "episode.gif"))
    from PIL import Image

    image = Image.open(tmp_path / "episode.gif")
    # Two steps drawn; Pillow merges identical consecutive frames (nobody moved).
    assert image.format == "GIF" and min(image.size) >= 64 and 1 <= image.n_frames <= 2


def test_config_json_keeps_the_rules_and_old_runs_stay_on_jumanji():
    from prism_marl.config import RunConfig, from_dict, to_dict

    data = to_dict(RunConfig())
    assert from_dict(data).env.lbf_rules == "lbforaging"
    del data["env"]["lbf_rules"]
    assert from_dict(data).env.lbf_rules == "jumanji"


@pytest.mark.parametrize("rules", ["lbforaging", "jumanji"])
def test_global_state_is_the_observations_divided_by_the_grid_size(rules):
    env = LBFEnv("8x8-2p-2f-coop", rules=rules)
    state, first = jax.jit(env.reset)(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    steps = [first]
    for t in range(60):  # past the 50-step limit: one episode end (a final observation)
        action = jax.random.randint(jax.random.PRNGKey(t), (2,), 0, 6)
        state, out = step(jax.random.PRNGKey(100 + t), state, action)
        steps.append(out)
    assert any(bool(s.episode_end) for s in steps)
    for s in steps:
        np.testing.assert_allclose(s.global_state, np.asarray(s.obs).reshape(-1) / 8.0)
        np.testing.assert_allclose(s.final_global_state, np.asarray(s.final_obs).reshape(-1) / 8.0)
        # raw coordinates 0..7 (padding -1) and levels 1..4 become at most 7/8, at least -1/8
        assert np.all(np.asarray(s.global_state) >= -1 / 8) and np.all(s.global_state <= 7 / 8)
