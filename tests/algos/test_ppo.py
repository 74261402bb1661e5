"""MAPPO / IPPO rollouts: the values computed after the collection scan are the critic's values
of each step's observation and of its final observation, with the bootstrap GAE needs."""

import dataclasses

import jax
import numpy as np
import pytest

from prism_marl.algos.ppo import PPO
from prism_marl.config import EnvConfig
from prism_marl.fast.layout import BatchLayout
from prism_marl.run import build_algorithm
from prism_marl.sharing import FuPS, Kaleidoscope, NoPS
from tests.conftest import tiny_config

# Episodes of 10 steps in a 24-step rollout: every env ends two episodes inside the rollout.
EPISODE_LIMIT, LENGTH = 10, 24


@pytest.fixture(scope="module", params=["mappo", "ippo"])
def rollout(request, tmp_path_factory):
    config = tiny_config(tmp_path_factory.mktemp(request.param), algo=request.param)
    config = dataclasses.replace(
        config,
        env=EnvConfig(id="lbf:8x8-2p-2f-coop", episode_limit=EPISODE_LIMIT),
        algo_config=dataclasses.replace(config.algo_config, rollout_length=LENGTH),
    )
    algo = build_algorithm(config)
    state = algo.init(jax.random.key(0))
    after, batch, _ = jax.jit(algo.rollout)(state)
    return algo, state, after, batch


def test_values_are_the_critics_values_of_each_steps_inputs(rollout):
    algo, state, _, batch = rollout
    expected = jax.vmap(lambda obs, gs: algo.values(state.variables, obs, gs))(
        batch.obs, batch.global_state
    )
    num_envs = algo.config.num_envs
    shape = (LENGTH, num_envs) if algo.centralised else (LENGTH, num_envs, 2)
    assert batch.value.shape == batch.final_value.shape == shape
    np.testing.assert_allclose(batch.value, expected, rtol=1e-5, atol=1e-6)


def test_final_values_follow_the_episode_and_differ_at_its_end(rollout):
    algo, _, after, batch = rollout
    ends = np.asarray(batch.episode_end)
    assert ends.sum(axis=0).min() == 2  # every env ended two episodes (steps 10 and 20)
    value, final = np.asarray(batch.value), np.asarray(batch.final_value)
    if not algo.centralised:
        ends = np.broadcast_to(ends[..., None], value.shape)
    # Inside an episode the final observation is the next one, so V(final) = V(next step).
    inside = ~ends[:-1]
    np.testing.assert_allclose(final[:-1][inside], value[1:][inside], rtol=1e-5, atol=1e-6)
    # At an episode's end the next step is a fresh episode's first: V(final) is not its value.
    assert np.all(np.abs(final[:-1] - value[1:])[ends[:-1]] > 1e-6)
    last = algo.values(after.variables, after.last_step.obs, after.last_step.global_state)
    np.testing.assert_allclose(final[-1][~ends[-1]], np.asarray(last)[~ends[-1]], rtol=1e-5)


@pytest.mark.parametrize(
    "algo_name, sharing",
    [("mappo", None), ("ippo", None), ("ippo", NoPS())],
    ids=["mappo-prism", "ippo-prism", "ippo-nops"],
)
def test_agents_first_minibatches_train_as_the_interleaved_layout(
    tmp_path, monkeypatch, algo_name, sharing
):
    """Moving the actor's (and IPPO's critic's) inputs agents first once per update changes no
    number but rounding."""
    # Prism (tiny_config's) or NoPS: per-agent kernels, MLP actor; IPPO's critic is per agent
    # too. NoPS runs its kernels through the grouped product, Prism through its spectral layer.
    config = tiny_config(tmp_path, algo=algo_name)
    if sharing is not None:
        config = dataclasses.replace(config, sharing=sharing)
    algo = build_algorithm(config)
    assert algo.layout.agents_first
    state = algo.init(jax.random.key(1))
    moved, moved_metrics = jax.jit(algo.update)(state)
    monkeypatch.setattr(PPO, "layout", property(lambda self: BatchLayout(agents_first=False)))
    kept, kept_metrics = jax.jit(algo.update)(state)
    assert moved_metrics.keys() == kept_metrics.keys()
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
        (moved.variables, moved_metrics),
        (kept.variables, kept_metrics),
    )
    # The update did train: the layouts agree on new parameters, not on the initial ones.
    changed = jax.tree_util.tree_map(
        lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
        moved.variables["params"],
        state.variables["params"],
    )
    assert all(jax.tree_util.tree_leaves(changed))


@pytest.mark.parametrize(
    "algo, changes, expected",
    [
        ("mappo", {}, True),
        ("mappo", {"sharing": FuPS()}, False),  # one kernel: nothing to lay out per agent
        ("ippo", {}, True),  # the per-agent critic moves with the actor
        ("ippo", {"sharing": FuPS()}, False),
        ("mappo", {"recurrent": True}, False),  # a GRU scans time first
    ],
)
def test_which_updates_lay_minibatches_out_agents_first(tmp_path, algo, changes, expected):
    config = tiny_config(tmp_path, algo=algo)
    if "recurrent" in changes:
        config = dataclasses.replace(
            config, algo_config=dataclasses.replace(config.algo_config, recurrent=True)
        )
    else:
        config = dataclasses.replace(config, **changes)
    assert build_algorithm(config).layout.agents_first is expected


def test_kaleidoscope_coefficient_tracks_the_actor_loss_only(tmp_path):
    """Kaleidoscope's c tracks policy and entropy terms, never the critic's value loss."""
    config = dataclasses.replace(tiny_config(tmp_path), sharing=Kaleidoscope())
    algo = build_algorithm(config)
    state = algo.init(jax.random.key(0))
    after, metrics = jax.jit(algo.update)(state)
    steps = int(after.aux_state.num_updates)
    assert steps == algo.config.num_epochs * algo.config.num_minibatches
    tracked = float(np.mean(np.asarray(after.aux_state.rl_losses)[:steps]))
    actor = float(metrics["loss/policy"] - algo.config.entropy_coef * metrics["loss/entropy"])
    value = float(algo.config.value_coef * metrics["loss/value"])
    assert value > 1e-4  # 100 times the tolerance below: it would show if it were tracked
    assert tracked == pytest.approx(actor, rel=1e-4, abs=1e-6)
