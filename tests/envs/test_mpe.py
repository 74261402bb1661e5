"""jaxmarl's MPE through the generic adapter: padding, masks, bounds, limits, errors, and every
strategy with every algorithm that fits its action space."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl import cli
from prism_marl.algos import make_algorithm
from prism_marl.config import EnvConfig
from prism_marl.envs import make_env
from prism_marl.errors import ConfigError
from prism_marl.programs import evaluations, init_seeds, train_chunks
from prism_marl.sharing import STRATEGIES, SePS
from tests.conftest import TINY_ALGO


@functools.cache
def env(env_id, limit=None):
    return make_env(EnvConfig(id=env_id, episode_limit=limit))


def test_agents_of_different_roles_are_padded_and_masked():
    """Speaker (3 features, 3 actions) and listener (11, 5): zero-padded observations, each
    agent's own actions valid, the global state every padded observation concatenated."""
    listener = env("mpe:simple_speaker_listener")
    spec = listener.spec
    assert (spec.num_agents, spec.obs_size, spec.num_actions) == (2, 11, 5)
    assert not spec.homogeneous and spec.action_kind == "discrete"
    _, first = jax.jit(listener.reset)(jax.random.PRNGKey(0))
    assert first.action_mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert bool(jnp.all(first.obs[0, 3:] == 0.0))
    assert jnp.array_equal(first.global_state, first.obs.reshape(-1))


def test_continuous_actions_are_clipped_to_their_box_and_rewards_sum_to_the_team_reward():
    spread = env("mpe:simple_spread_continuous")
    spec = spread.spec
    assert (spec.action_kind, spec.action_low, spec.action_high) == ("continuous", 0.0, 1.0)
    assert spec.homogeneous and spec.state_size == 3 * spec.obs_size
    state, _ = jax.jit(spread.reset)(jax.random.PRNGKey(0))
    step = jax.jit(spread.step)
    key = jax.random.PRNGKey(1)
    actions = jnp.array([[-3.0, 0.2, 7.0, 0.5, 0.1]] * 3)
    _, wild = step(key, state, actions)
    _, clipped = step(key, state, jnp.clip(actions, 0.0, 1.0))
    assert jnp.array_equal(wild.obs, clipped.obs)
    assert float(wild.team_reward) == pytest.approx(float(jnp.sum(wild.reward)))


def test_episode_limits():
    """mpe: plays MPE's 25 steps; jaxmarl: keeps jaxmarl's own length (max_steps + 1)."""
    assert env("mpe:simple_spread").spec.episode_limit == 25
    assert env("mpe:simple_spread", 7).spec.episode_limit == 7
    assert env("jaxmarl:MPE_simple_spread_v3").spec.episode_limit == 26


@pytest.mark.parametrize(
    ("env_id", "needle"),
    [
        ("mpe:simple_nowhere", "env: unknown MPE task 'simple_nowhere'; valid: mpe:simple, "),
        ("mpe:simple_facmac_3a_discrete", "env: mpe:simple_facmac_3a has continuous actions only"),
        ("jaxmarl:Nowhere_v0", "env: unknown jaxmarl environment 'Nowhere_v0'"),
    ],
)
def test_unknown_tasks_are_one_line_config_errors(env_id, needle):
    with pytest.raises(ConfigError) as error:
        make_env(EnvConfig(id=env_id))
    assert str(error.value).startswith(needle) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("algo", "env_id", "needle"),
    [
        ("matd3", "mpe:simple_spread", "algo: matd3 needs continuous actions"),
        ("qmix", "mpe:simple_spread_continuous", "algo: qmix needs discrete actions"),
    ],
)
def test_an_algorithm_that_does_not_fit_is_refused_on_one_line(
    tmp_path, capfd, algo, env_id, needle
):
    run_dir = tmp_path / "never"
    argv = ["train", "--run-dir", str(run_dir), "--algo", algo, "--env", env_id]
    assert cli.main(argv) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert not run_dir.exists()


def strategy(name):
    if name == "seps":  # prepared: two clusters of per-cluster (grouped) kernels
        return SePS(cluster_of_agent=(0, 1, 1))
    return STRATEGIES[name]()


def build(algo, env_id, name):
    return make_algorithm(algo, env(env_id, 8), strategy(name), TINY_ALGO[algo], 1_000)


KEYS = jax.random.split(jax.random.PRNGKey(0), 2)


def train_one_chunk(algo, env_id, name):
    """Init 2 seeds, train one chunk of ``algo`` + strategy ``name`` on ``env_id`` (8-step
    episodes) and evaluate 2 episodes: the chunk's metrics and the returns (``eval``). MATD3's
    chunk has 3 updates: its first gradient step comes after 16 steps of 8 per update."""
    built = build(algo, env_id, name)
    updates = 3 if algo == "matd3" else 1
    state, metrics = train_chunks(built, updates)(init_seeds(built)(KEYS))
    returns = evaluations(built, 2)(state.variables, KEYS, True)[0]
    return {**{k: np.asarray(v) for k, v in metrics.items()}, "eval": np.asarray(returns)}


def assert_finite(metrics):
    losses = {k: v for k, v in metrics.items() if k.startswith("loss/")}
    assert losses and all(np.all(np.isfinite(v)) for v in losses.values()), losses
    assert np.all(np.isfinite(metrics["eval"])), metrics["eval"]


@pytest.mark.slow(minutes=1)
@pytest.mark.parametrize("algo", ["mappo", "ippo", "qmix", "vdn"])
def test_every_strategy_fits_simple_spread(algo):
    """Prism trains one chunk and evaluates; every other strategy's init and training chunk
    are traced (``eval_shape``: the shapes of MPE's observations, masks and state through each
    strategy's networks), as the lowering tests do, for a few seconds each instead of a
    compile of 15-30 s (measured: all seven compiled took 100 s for MAPPO, 220 s for QMIX)."""
    assert_finite(train_one_chunk(algo, "mpe:simple_spread", "prism"))
    for name in STRATEGIES:
        built = build(algo, "mpe:simple_spread", name)
        state = jax.eval_shape(init_seeds(built), KEYS)
        _, metrics = jax.eval_shape(train_chunks(built, 1), state)
        assert "train/return" in metrics, name


@pytest.mark.slow(minutes=1)
@pytest.mark.parametrize(("algo", "name"), [("matd3", "fups"), ("mappo", "prism")])
def test_continuous_simple_spread_trains(algo, name):
    """MATD3 and PPO's Gaussian head on the continuous task: one chunk, then evaluated."""
    assert_finite(train_one_chunk(algo, "mpe:simple_spread_continuous", name))
