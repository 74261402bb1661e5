"""QMIX / VDN: mixer monotonicity, masked ε-greedy, reward statistics, smoke runs
over every strategy through the runner, determinism and checkpoint round trip, bad input."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.algos.qmix import (
    QMIXConfig,
    QMixer,
    RewardStats,
    _update_reward_stats,
    epsilon,
    epsilon_greedy,
)
from prism_marl.config import EnvConfig
from prism_marl.errors import ConfigError
from prism_marl.run import Trainer, resume
from prism_marl.sharing import STRATEGIES, SePS
from tests.conftest import TINY_QMIX, read_metrics, tiny_config

TINY = TINY_QMIX


def tiny_run(run_dir, **changes):
    return tiny_config(run_dir, **{"algo": "qmix", **changes})


def test_mixer_is_monotone_in_every_agent_value():
    mixer = QMixer(num_agents=3, embed=4, hypernet_hidden=8)
    keys = jax.random.split(jax.random.key(0), 3)
    q = jax.random.normal(keys[0], (64, 3)) * 3.0
    state = jax.random.normal(keys[1], (64, 5)) * 3.0
    params = mixer.init(keys[2], q, state)
    # Larger weights than the small output initialisation, so the check is not trivial.
    params = jax.tree_util.tree_map(lambda p: p * 50.0, params)
    grads = jax.vmap(jax.grad(lambda qi, si: mixer.apply(params, qi, si)))(q, state)
    assert np.all(np.asarray(grads) >= 0.0)
    assert np.any(np.asarray(grads) > 0.0)


def test_epsilon_greedy_never_picks_a_masked_action():
    keys = jax.random.split(jax.random.key(1), 3)
    q = jax.random.normal(keys[0], (2000, 6))
    mask = jax.random.bernoulli(keys[1], 0.4, (2000, 6)).at[:, 3].set(True)
    for eps in (0.0, 0.5, 1.0):
        actions = epsilon_greedy(keys[2], q, mask, jnp.asarray(eps))
        assert np.all(np.take_along_axis(np.asarray(mask), np.asarray(actions)[:, None], 1))
    greedy = epsilon_greedy(keys[2], q, mask, jnp.asarray(0.0))
    np.testing.assert_array_equal(greedy, jnp.argmax(jnp.where(mask, q, -jnp.inf), axis=-1))
    explored = epsilon_greedy(keys[2], q, mask, jnp.asarray(1.0))
    assert np.mean(np.asarray(explored) != np.asarray(greedy)) > 0.3


def test_epsilon_schedule_is_linear_then_flat():
    config = QMIXConfig(epsilon_start=1.0, epsilon_end=0.1, epsilon_steps=100)
    np.testing.assert_allclose(
        [float(epsilon(config, jnp.asarray(t))) for t in (0, 50, 100, 1000)],
        [1.0, 0.55, 0.1, 0.1],
        rtol=1e-6,
    )


def test_reward_statistics_match_numpy():
    rewards = np.random.default_rng(0).normal(2.0, 3.0, size=(5, 40))
    stats = RewardStats(jnp.zeros(()), jnp.ones(()), jnp.full((), 1e-4))
    for row in rewards:
        stats = _update_reward_stats(stats, jnp.asarray(row))
    np.testing.assert_allclose(stats.mean, rewards.mean(), rtol=1e-3)
    np.testing.assert_allclose(stats.var, rewards.var(), rtol=1e-3)


# In test-all: a minute of compiles beside the other worker, and the fast tier is near 15 min.
@pytest.mark.slow(minutes=1)
def test_next_step_values_from_the_unroll_equal_a_gru_step_on_every_next_observation(tmp_path):
    """``_next_q`` takes Q(o_{t+1}) from the unroll and steps the GRU only at the K stored ends
    (the sequence's last step and truncations); on collected sequences with 5-step episodes
    inside 8-step sequences (truncations mid-sequence, resets after them) it equals one GRU
    step on every step's real next observation from the hidden state after that step,
    wherever the bootstrap is read (not at terminations), and the TD targets from the stored
    ends equal those from every step's."""
    from prism_marl.algos.common import select_network
    from prism_marl.run import build_algorithm

    config = tiny_run(tmp_path / "r", env=EnvConfig(id="lbf:8x8-2p-2f-coop", episode_limit=5))
    algo = build_algorithm(config)
    assert algo.boundary_slots == 3  # ⌈7 / 5⌉ truncations in the first 7 steps, the last step
    state = jax.jit(algo.init)(jax.random.key(3))
    state, _ = jax.jit(algo.collect)(state)
    state, every = jax.jit(algo.collect_steps)(state)  # hidden states that are not all zero
    batch = algo.keep_ends(every)  # as stored: [E, T, ...], ends [E, K, ...]
    assert every.ends.obs.shape[1] == 8 and batch.ends.obs.shape[1] == 3
    truncated = np.asarray(batch.episode_end & ~batch.terminated)
    assert truncated[:, :-1].any() and np.asarray(batch.hidden).any()

    @jax.jit
    def both(variables, target_next_q):
        hiddens, q_values = algo._unroll(variables, batch)
        t, b = hiddens.shape[:2]
        flat = lambda x: jnp.swapaxes(x, 0, 1).reshape(1, t * b, *x.shape[2:])  # noqa: E731
        _, direct = algo._q_values(
            select_network(variables, algo.policy_network),
            hiddens.reshape(t * b, *hiddens.shape[2:]),
            flat(every.ends.obs),
            algo.agent_ids,
            jnp.zeros((1, t * b), bool),
            flat(every.ends.action_mask),
        )
        fast = algo._next_q(variables, hiddens, q_values, batch)
        mixer = variables["params"]["mixer"]
        targets = [
            algo.td_targets(fast, target_next_q, mixer, sequences, sequences.reward)
            for sequences in (batch, every)
        ]
        return fast, direct[0].reshape(q_values.shape), *targets

    target_next_q = jax.random.normal(jax.random.key(4), (8, 2, 2, 6))  # [T, E, N, A]
    fast, direct, stored, full = both(state.variables, target_next_q)
    read = ~np.swapaxes(np.asarray(batch.terminated), 0, 1)  # [T, B]
    np.testing.assert_allclose(np.asarray(fast)[read], np.asarray(direct)[read], atol=1e-5)
    np.testing.assert_allclose(stored, full, atol=1e-6)


def test_sequence_ends_keep_the_truncations_then_the_last_step():
    """``keep_ends`` picks each sequence's truncated steps (before the last), pads with the
    last step, and carries those steps' next observations: hand-built 6-step sequences."""
    from prism_marl.algos.qmix import SequenceEnds, Sequences
    from prism_marl.run import build_algorithm

    algo = build_algorithm(tiny_run("unused", env=EnvConfig(id="lbf:8x8-2p-2f-coop")))
    assert algo.boundary_slots == 2  # segments of 8 steps, episodes of 50: one truncation slot
    t = 6
    ends = np.zeros((3, t), bool)
    terminated = np.zeros((3, t), bool)
    ends[0, 2] = True  # truncated at step 2
    ends[1, 1] = terminated[1, 1] = True  # terminated: no slot
    ends[2, 5] = True  # truncated at the last step: the last slot covers it
    steps = np.broadcast_to(np.arange(t), (3, t))
    zeros = np.zeros((3, t))
    every = Sequences(
        obs=zeros, action_mask=zeros, state=zeros, starts=zeros, action=zeros, reward=zeros,
        terminated=jnp.asarray(terminated), episode_end=jnp.asarray(ends),
        ends=SequenceEnds(
            step=jnp.asarray(steps, jnp.int32),
            obs=jnp.asarray(10.0 * steps)[..., None, None],
            action_mask=jnp.asarray(steps % 2 == 0)[..., None, None],
            state=jnp.asarray(-1.0 * steps)[..., None],
        ),
        hidden=zeros[:, 0],
    )  # fmt: skip
    kept = algo.keep_ends(every).ends
    np.testing.assert_array_equal(kept.step, [[2, 5], [5, 5], [5, 5]])
    np.testing.assert_array_equal(kept.obs[..., 0, 0], 10.0 * np.asarray(kept.step))
    np.testing.assert_array_equal(kept.action_mask[..., 0, 0], np.asarray(kept.step) % 2 == 0)
    np.testing.assert_array_equal(kept.state[..., 0], -1.0 * np.asarray(kept.step))


# The fast tier's QMIX run is QMIX + Prism, killed and resumed (below); the rest of the matrix
# runs in `make test-all`.
SMOKE = [("qmix", name) for name in STRATEGIES if name != "prism"] + [("vdn", "prism")]


def assert_trained(summary, records, steps):
    assert 0.0 <= summary["final_return_mean"] <= 1.0
    assert [r["env_steps"] for r in records] == steps
    assert np.isfinite(records[-1]["loss/td"]) and records[-1]["loss/td"] >= 0
    assert records[-1]["train/learning"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize(("algo", "name"), SMOKE, ids=[f"{a}-{n}" for a, n in SMOKE])
def test_smoke_every_strategy(tmp_path, algo, name):
    strategy = STRATEGIES[name]()
    if name == "seps":
        strategy = SePS(pretrain_steps=32, num_clusters=2, vae_epochs=1)
    config = tiny_run(tmp_path / "r", algo=algo, sharing=strategy, num_seeds=1)
    summary = Trainer(config, progress=False).run()
    assert_trained(summary, read_metrics(tmp_path / "r"), [0, 32, 64])


def test_qmix_with_prism_trains_and_resumes_exactly(tmp_path):
    """Two seeds, three chunks; a run killed after one chunk resumes to the same losses and
    final returns (replay buffer, ε schedule and reward statistics come back from the
    checkpoint). The killed and resumed runs reuse the memoised programs."""
    full = tiny_run(tmp_path / "full", total_steps=96)
    summary = Trainer(full, progress=False).run()
    records = read_metrics(tmp_path / "full")
    assert_trained(summary, [r for r in records if r["seed"] == 1], [0, 32, 64, 96])
    killed = dataclasses.replace(full, run_dir=str(tmp_path / "killed"))
    assert Trainer(killed, progress=False).run(max_chunks=1) is None
    resumed = resume(tmp_path / "killed", progress=False)
    assert resumed["final_returns"] == summary["final_returns"]

    def losses(run_dir):
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line).get("loss/td") for line in lines]

    assert losses(tmp_path / "killed") == losses(tmp_path / "full")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"batch_size": 16, "buffer_size": 8, "learning_starts": 8}, "algo.buffer-size"),
        ({"batch_size": 4, "learning_starts": 2}, "algo.learning-starts"),
        ({"td_lambda": 1.5}, "algo.td-lambda"),
        ({"epsilon_end": 0.5, "epsilon_start": 0.1}, "algo.epsilon-start"),
    ],
)
def test_impossible_settings_fail_naming_the_field(tmp_path, changes, field):
    config = tiny_run(tmp_path / "x", algo_config=dataclasses.replace(TINY, **changes))
    with pytest.raises(ConfigError, match=field):
        Trainer(config, progress=False)


def test_continuous_environments_are_rejected(tmp_path):
    config = tiny_run(tmp_path / "x", env=EnvConfig(id="mabrax:hopper_3x1"))
    with pytest.raises(ConfigError, match="discrete"):
        Trainer(config, progress=False)
