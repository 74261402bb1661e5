"""MATD3: critic ensemble, losses against hand-built targets, validation, and
runs through the runner (every strategy, the masked ensemble, determinism and resume)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.algos.common import merge_networks
from prism_marl.algos.matd3 import (
    MATD3,
    Learner,
    MaskedCriticEnsemble,
    Transition,
    redraw_ensemble_mask,
)
from prism_marl.envs.base import EnvSpec, EnvStep
from prism_marl.errors import ConfigError
from prism_marl.programs import init_seeds, train_chunks
from prism_marl.rl.targets import smoothed_target_actions
from prism_marl.run import Trainer, build_algorithm, prepare_strategy, resume, seed_keys
from prism_marl.sharing import FuPS, Kaleidoscope, Prism, SePS
from prism_marl.sharing.base import init_aux_state
from prism_marl.sharing.masked import soft_threshold
from tests.conftest import TINY_MATD3, read_metrics, stable
from tests.conftest import tiny_config as shared_tiny_config

# ------------------------------------------------------------------------------ unit level

N, D, A, S = 3, 5, 2, 4
MASK = np.array([[True, True], [True, False], [True, True]])  # agent 1 has one real dim


class StubEnv:
    """Only a spec: enough to build MATD3's networks and losses without a simulator."""

    def __init__(self, action_kind="continuous"):
        self.spec = EnvSpec("stub", N, D, A, S, action_kind, 10)


TINY = TINY_MATD3


def test_masked_ensemble_members_share_one_kernel_and_differ_by_masks():
    critic = MaskedCriticEnsemble((8,), "relu", size=3)
    state, joint = jnp.ones((5, S)), jnp.linspace(-1, 1, 5 * N * A).reshape(5, N * A)
    variables = critic.init(jax.random.PRNGKey(0), state, joint)
    params = variables["params"]
    # Prune differently per member so that the masks matter.
    for layer in params.values():
        layer["thresholds"] = jax.random.normal(jax.random.PRNGKey(1), layer["thresholds"].shape)
    q = critic.apply({**variables, "params": params}, state, joint)
    assert q.shape == (5, 3)
    x = jnp.concatenate([state, joint], -1)
    for k in range(3):
        w0 = soft_threshold(params["dense_0"]["kernel"], params["dense_0"]["thresholds"])[k]
        w1 = soft_threshold(params["dense_1"]["kernel"], params["dense_1"]["thresholds"])[k]
        hidden = jax.nn.relu(x @ w0 + params["dense_0"]["bias"])
        np.testing.assert_allclose(q[:, k], (hidden @ w1 + params["dense_1"]["bias"])[:, 0], 1e-5)
    assert not np.allclose(q[:, 0], q[:, 1])
    redrawn = redraw_ensemble_mask(params, jax.random.PRNGKey(2), jnp.asarray(1))
    for name, layer in params.items():
        new = redrawn[name]["thresholds"]
        np.testing.assert_array_equal(new[np.array([0, 2])], layer["thresholds"][np.array([0, 2])])
        assert np.all(new[1] <= -5.0) and np.all(new[1] >= -10.0)  # prunes almost nothing


def losses_setup(ensemble):
    config = dataclasses.replace(TINY, critic_ensemble=ensemble, ensemble_size=3, n_step=2)
    algo = MATD3(StubEnv(), Prism(rank=4), config, 1000)
    keys = jax.random.split(jax.random.PRNGKey(3), 8)
    batch = 6
    obs = jax.random.normal(keys[0], (2, batch, N, D))
    mask = jnp.broadcast_to(jnp.asarray(MASK), (2, batch, N, A))
    actor = algo.actor.init(keys[1], obs[0], algo.agent_ids, mask[0])
    critic = algo.critic.init(keys[2], jnp.zeros((batch, S)), jnp.zeros((batch, N * A)))
    target_critic = algo.critic.init(keys[3], jnp.zeros((batch, S)), jnp.zeros((batch, N * A)))
    variables = merge_networks(actor=actor, critic=critic)
    targets = merge_networks(actor=actor, critic=target_critic)
    window = Transition(
        obs=obs,
        action_mask=mask,
        global_state=jax.random.normal(keys[4], (2, batch, S)),
        action=jnp.where(mask, jax.random.uniform(keys[5], (2, batch, N, A), minval=-1), 0.0),
        reward=jnp.array([[1.0] * batch, [2.0] * batch]),
        terminated=jnp.array([[False, True, False, False, False, False], [False] * batch]),
        episode_end=jnp.array([[False, True, True, False, False, False], [False] * batch]),
        next_obs=jax.random.normal(keys[6], (2, batch, N, D)),
        next_global_state=jax.random.normal(keys[7], (2, batch, S)),
    )
    learner = Learner(variables, targets, None, None, init_aux_state(algo.strategy))
    return algo, learner, window


@pytest.mark.parametrize("ensemble", [False, True], ids=["twin", "ensemble"])
def test_critic_target_is_the_min_and_actor_uses_q1_or_the_mean(ensemble):
    algo, learner, window = losses_setup(ensemble)
    noise_key = jax.random.PRNGKey(9)
    td_target = algo.td_targets(learner.targets, window, noise_key)
    first = jax.tree_util.tree_map(lambda x: x[0], window)
    critic = learner.variables["params"]["critic"]
    loss, _ = algo.critic_loss(critic, learner.variables, first, td_target)
    # Hand-built 2-step target: window 1 terminates at step 0, window 2 is truncated there.
    last = np.array([1, 0, 0, 1, 1, 1])
    pick = lambda x: x[last, np.arange(6)]  # noqa: E731
    mask = window.action_mask[0]
    next_actions = smoothed_target_actions(
        algo.policy(learner.targets, pick(window.next_obs), mask), noise_key, 0.2, 0.5, -1, 1, mask
    )
    next_q = algo.q_values(learner.targets, pick(window.next_global_state), next_actions)
    assert next_q.shape == (6, 3 if ensemble else 2)
    reward_sum = np.array([1 + 0.99 * 2, 1, 1, 1 + 0.99 * 2, 1 + 0.99 * 2, 1 + 0.99 * 2])
    discount = np.array([0.99**2, 0.0, 0.99, 0.99**2, 0.99**2, 0.99**2])
    target = reward_sum + discount * np.min(next_q, -1)
    q = algo.q_values(learner.variables, window.global_state[0], window.action[0])
    expected = np.sum(np.mean((q - target[:, None]) ** 2, 0))
    np.testing.assert_allclose(td_target, target, rtol=1e-5)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)

    total, parts = algo.actor_loss(learner.variables["params"]["actor"], learner, first)
    rl_loss, aux = parts.rl_loss, parts.aux
    q_pi = algo.q_values(
        learner.variables,
        first.global_state,
        algo.policy(learner.variables, first.obs, first.action_mask),
    )
    wanted = -np.mean(np.mean(q_pi, -1) if ensemble else q_pi[:, 0])
    np.testing.assert_allclose(rl_loss, wanted, rtol=1e-5)
    np.testing.assert_allclose(total, rl_loss + aux.loss, rtol=1e-5)
    assert "prism/orth" in aux.metrics


def test_actions_are_in_the_box_and_zero_on_padded_dims():
    algo, learner, window = losses_setup(False)
    actions = algo.policy(learner.variables, window.obs[0] * 100, window.action_mask[0])
    assert np.all(np.abs(np.asarray(actions)) <= 1.0)
    np.testing.assert_array_equal(np.asarray(actions)[:, ~MASK], 0.0)


def test_act_plays_the_mean_greedily_and_explores_as_collection_does():
    """Evaluation's ``act``: μ(o) when greedy, otherwise exactly the collection's noisy draw."""
    algo, learner, window = losses_setup(False)
    step = EnvStep.first(window.obs[0], window.action_mask[0], window.global_state[0])
    key, carry = jax.random.PRNGKey(5), algo.initial_carry(6)
    mean = algo.policy(learner.variables, step.obs, step.action_mask)
    explored = algo.explore(learner.variables, step, key, jnp.asarray(False))
    greedy = algo.act(learner.variables, carry, step, carry, key, jnp.asarray(True))[1]
    noisy = algo.act(learner.variables, carry, step, carry, key, jnp.asarray(False))[1]
    np.testing.assert_array_equal(greedy, mean)
    np.testing.assert_allclose(noisy, explored, atol=1e-6)
    assert not np.allclose(noisy[:, MASK], mean[:, MASK])
    np.testing.assert_array_equal(np.asarray(noisy)[:, ~MASK], 0.0)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"n_step": 0}, "algo.n-step"),
        ({"batch_size": 128}, "algo.batch-size"),  # more than the buffer
        ({"batch_size": 40, "buffer_size": 1000}, "algo.batch-size"),  # > the first fill
        ({"tau": 0.0}, "algo.tau"),
        ({"tau": 1.5}, "algo.tau"),
        ({"actor_lr": 0.0}, "algo.actor-lr"),
        ({"critic_lr": -1.0}, "algo.critic-lr"),
        ({"policy_delay": 3}, "algo.policy-delay"),
        ({"buffer_size": 4}, "algo.buffer-size"),
    ],
)
def test_bad_settings_name_the_field(changes, needle):
    with pytest.raises(ConfigError, match=needle) as error:
        MATD3(StubEnv(), FuPS(), dataclasses.replace(TINY, **changes), 1000)
    assert "\n" not in str(error.value)


def test_discrete_envs_are_rejected():
    with pytest.raises(ConfigError, match="matd3 needs continuous actions"):
        MATD3(StubEnv("discrete"), FuPS(), TINY, 1000)


# ----------------------------------------------------------------------------- runner level


def tiny_config(run_dir, **changes):
    return shared_tiny_config(run_dir, algo="matd3", **changes)


read = read_metrics


# The fast tier's MATD3 run is its richest: Kaleidoscope's actor with the masked critic
# ensemble and both resets, killed and resumed (the replay buffer, target networks, exploration
# keys and reset counters all come back from the checkpoint). `make test-all` adds SePS's
# preparation hook (below, without a training run) and FuPS (the hopper learning check).
# Prism, NoPS, FuPS+ID and SNP reach MATD3 only through the layer interface: the lowering and
# start-up tests of tests/test_programs.py trace them, and a full MaBrax run each costs CI 2
# minutes (decision 0015). This one alone took 4.7 minutes of the fast tier on 2 cores
# (2026-12-03), so it runs in CI's full tier.
@pytest.mark.slow(minutes=4)
def test_kaleidoscope_with_the_masked_critic_ensemble_trains_and_resumes_exactly(tmp_path):
    config = tiny_config(
        tmp_path / "k",
        sharing=Kaleidoscope(reset_interval=16),
        algo_config=dataclasses.replace(
            TINY, critic_ensemble=True, ensemble_size=3, ensemble_reset_interval=16
        ),
        num_seeds=2,
    )
    summary = Trainer(config, progress=False).run()
    assert np.isfinite(summary["final_return_mean"])
    full = read(tmp_path / "k")
    record = full[-1]
    assert record["env_steps"] == 48
    for key in ("loss/critic", "loss/actor", "loss/aux", "q/mean", "train/return"):
        assert np.isfinite(record[key]), key
    assert record["loss/critic"] > 0  # learning started (learning_starts = 16)
    assert 0 <= record["kaleidoscope/mask_distance"] <= 1
    assert summary["additional"] > 0  # the actor's thresholds; the critic's are not counted
    assert full[2]["seed"] == 0 and full[2]["loss/critic"] != full[3]["loss/critic"]  # seeds
    # The same settings' programs are memoised: the killed and resumed runs compile nothing.
    killed = dataclasses.replace(config, run_dir=str(tmp_path / "killed"))
    assert Trainer(killed, progress=False).run(max_chunks=2) is None
    assert stable(read(tmp_path / "killed")) == stable(full)[:6]  # step 0 and two chunks
    resumed = resume(tmp_path / "killed", progress=False)
    assert stable(read(tmp_path / "killed")) == stable(full)
    assert resumed["final_returns"] == summary["final_returns"]


@pytest.mark.slow(minutes=1.5)
def test_seps_prepares_through_matd3s_hooks():
    """SePS's preparation through MATD3's hooks (``agent_transitions``, ``with_variables``):
    agents clustered from a real exploring rollout, each cluster's kernels the shared kernel
    they were trained as, fresh optimizers, and a state the prepared algorithm's training chunk
    accepts (traced, not compiled: the whole run's MaBrax compiles cost CI 5 minutes; MAPPO's
    and QMIX's SePS runs train through the same runner step, ``run.prepare_strategy``)."""
    config = tiny_config(
        "unused", sharing=SePS(pretrain_steps=16, num_clusters=2, vae_epochs=1), num_seeds=2
    )
    algo = build_algorithm(config)
    state = init_seeds(algo)(seed_keys(config))
    prepared, new_state, record = prepare_strategy(config, algo, state)
    tables = [  # every grouped layer's per-seed table, [S, N]
        np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(new_state.variables["buffers"])
        if "group_of_agent" in jax.tree_util.keystr(path)
    ]
    assert tables
    for table in tables:
        np.testing.assert_array_equal(table, record["cluster_of_agent"])
    assert tables[0].shape == (2, 3) and set(tables[0].ravel()) <= {0, 1}, tables
    before = state.variables["params"]["actor"]
    after = new_state.variables["params"]["actor"]
    grouped = [
        (path, old, new)
        for (path, old), new in zip(
            jax.tree_util.tree_leaves_with_path(before),
            jax.tree_util.tree_leaves(after),
            strict=True,
        )
        if old.shape != new.shape
    ]
    assert grouped, "no per-cluster kernels"
    for path, old, new in grouped:  # [S, 1, ...] shared -> [S, clusters, ...] per cluster
        assert new.shape[1] == prepared.strategy.prepared_clusters == 2, path
        np.testing.assert_array_equal(new, np.repeat(np.asarray(old), new.shape[1], axis=1))
    jax.tree_util.tree_map(np.testing.assert_array_equal, new_state.targets, new_state.variables)
    steps = jax.tree_util.tree_leaves(new_state.actor_opt_state)
    assert any(leaf.dtype == jnp.int32 and not np.any(leaf) for leaf in steps)  # fresh counts
    shapes = jax.eval_shape(train_chunks(prepared, 1), new_state)[0]
    assert jax.tree_util.tree_structure(shapes) == jax.tree_util.tree_structure(new_state)
