"""MATD3: critic ensemble, losses against hand-built targets, validation, and
runs through the runner (every strategy, the masked ensemble, determinism and resume)."""

import dataclasses
import json

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
from prism_marl.envs.base import EnvSpec
from prism_marl.errors import ConfigError
from prism_marl.rl.targets import smoothed_target_actions
from prism_marl.run import Trainer, resume
from prism_marl.sharing import FuPS, Kaleidoscope, Prism, SePS
from prism_marl.sharing.kaleidoscope import soft_threshold
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
    learner = Learner(variables, targets, None, None, algo.strategy.init_aux_state())
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


# The fast tier's MATD3 smoke run is its richest: Kaleidoscope's actor with the masked critic
# ensemble and both resets. `make test-all` adds SePS (its preparation hook, inside the resume
# test) and FuPS (the hopper learning check). Prism, NoPS, FuPS+ID and SNP reach MATD3 only
# through the layer interface: the lowering and start-up tests of tests/test_programs.py trace
# them, and a full MaBrax run each costs CI 2 minutes (decision 0015).
def test_smoke_kaleidoscope_with_the_masked_critic_ensemble(tmp_path):
    config = tiny_config(
        tmp_path / "k",
        sharing=Kaleidoscope(reset_interval=16),
        algo_config=dataclasses.replace(
            TINY, critic_ensemble=True, ensemble_size=3, ensemble_reset_interval=16
        ),
    )
    summary = Trainer(config, progress=False).run()
    assert np.isfinite(summary["final_return_mean"])
    record = read(tmp_path / "k")[-1]
    assert record["env_steps"] == 48
    for key in ("loss/critic", "loss/actor", "loss/aux", "q/mean", "train/return"):
        assert np.isfinite(record[key]), key
    assert record["loss/critic"] > 0  # learning started (learning_starts = 16)
    assert 0 <= record["kaleidoscope/mask_distance"] <= 1
    assert summary["additional"] > 0  # the actor's thresholds; the critic's are not counted


@pytest.mark.slow(minutes=5)
def test_seps_prepares_and_resume_continues_exactly(tmp_path):
    """SePS through MATD3's preparation hook (clusters after 16 steps; checkpoints and
    config.json switch to the clustered strategy), same seed same metrics, and a run killed
    after its preparation resumes to the uninterrupted run's results. One run each for what
    were two tests: MaBrax compiles dominate CI's time (decision 0015)."""
    seps = SePS(pretrain_steps=16, num_clusters=2, vae_epochs=1)
    config = tiny_config(tmp_path / "full", sharing=seps, num_seeds=2)
    summary = Trainer(config, progress=False).run()
    prepared = json.loads((tmp_path / "full" / "config.json").read_text())["sharing"]
    assert prepared["type"] == "seps" and len(prepared["cluster_of_agent"]) == 3, prepared
    killed = dataclasses.replace(config, run_dir=str(tmp_path / "killed"))
    assert Trainer(killed, progress=False).run(max_chunks=2) is None
    full, partial = stable(read(tmp_path / "full")), stable(read(tmp_path / "killed"))
    assert partial == full[:6]  # same seed, same metrics: step 0 and two chunks, two seeds
    assert full[2]["seed"] == 0 and full[2]["loss/critic"] != full[3]["loss/critic"]
    for record in full[2:]:
        for key in ("loss/critic", "loss/actor", "q/mean", "train/return"):
            assert np.isfinite(record[key]), key
    resumed = resume(tmp_path / "killed", progress=False)
    assert stable(read(tmp_path / "killed")) == full
    assert resumed["final_returns"] == summary["final_returns"]
