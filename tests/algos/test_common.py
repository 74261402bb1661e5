"""The scaffolding every algorithm shares: gradient norms measured apart, optimiser steps."""

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from prism_marl.algos.common import descend, regularised, seed_transitions
from prism_marl.algos.matd3 import MATD3Config
from prism_marl.algos.ppo import PPOConfig
from prism_marl.algos.qmix import QMIXConfig
from prism_marl.envs.base import EnvSpec, EnvStep
from prism_marl.sharing import FuPS
from prism_marl.sharing.base import AuxOutput


@dataclasses.dataclass(frozen=True)
class SumAux(FuPS):
    """A strategy whose auxiliary loss is Σ w (gradient 1 per entry)."""

    def aux_loss(self, variables, aux_state):
        del aux_state
        return AuxOutput(jnp.sum(variables["params"]["w"]), {})


def test_descend_reports_rl_and_aux_gradient_norms_before_clipping():
    strategy = SumAux()

    def loss(params):
        rl_loss = 0.5 * jnp.sum(jnp.square(params["w"]))  # ∇ = w
        return regularised(strategy, {"params": params}, (), rl_loss, {})

    params = {"w": jnp.array([3.0, 4.0])}
    optimizer = optax.chain(optax.clip_by_global_norm(0.1), optax.sgd(1.0))
    step = descend(strategy, optimizer, loss, params, optimizer.init(params), ())
    assert float(step.metrics["grad/rl_norm"]) == pytest.approx(5.0)
    assert float(step.metrics["grad/aux_norm"]) == pytest.approx(2**0.5)
    # The step itself still follows the clipped sum of both: ∇ = (4, 5), norm √41, clipped to 0.1.
    moved = jnp.linalg.norm(params["w"] - step.params["w"])
    assert float(moved) == pytest.approx(0.1, rel=1e-5)


def test_descend_reports_the_per_agent_parameters_gradients_apart():
    strategy = SumAux()  # FuPS's per-agent leaf: agent_id_kernel

    def loss(params):
        rl_loss = 0.5 * jnp.sum(jnp.square(params["w"])) + 2.0 * jnp.sum(params["agent_id_kernel"])
        return regularised(strategy, {"params": params}, (), rl_loss, {})

    params = {"w": jnp.array([3.0, 4.0]), "agent_id_kernel": jnp.array([1.0, 1.0, 1.0])}
    optimizer = optax.sgd(0.1)
    step = descend(strategy, optimizer, loss, params, optimizer.init(params), ())
    # RL: ∇k = (2, 2, 2); the aux term Σ w touches only w.
    assert float(step.metrics["grad/agent_rl_norm"]) == pytest.approx(12**0.5)
    assert float(step.metrics["grad/agent_aux_norm"]) == 0.0
    assert float(step.metrics["grad/rl_norm"]) == pytest.approx((25 + 12) ** 0.5)
    # Without per-agent parameters the two keys are absent rather than a misleading zero.
    del params["agent_id_kernel"]

    def shared_loss(params):
        return regularised(strategy, {"params": params}, (), jnp.sum(params["w"]), {})

    step = descend(strategy, optimizer, shared_loss, params, optimizer.init(params), ())
    assert "grad/agent_rl_norm" not in step.metrics


@dataclasses.dataclass(frozen=True)
class DecoupledSumAux(SumAux):
    """``SumAux`` with its auxiliary gradient applied outside the optimiser."""

    @property
    def decoupled_aux(self):
        return True


@pytest.mark.parametrize("decoupled", [False, True])
def test_decoupled_aux_steps_outside_adam(decoupled):
    """Adam's first step is −lr·ĝ/(|ĝ| + ε) ≈ −lr·sign(ĝ). Coupled, ĝ = ∇L_RL + ∇L_aux
    = 0.001 + 1, so w moves by −lr; decoupled, Adam sees 0.001 alone and the auxiliary gradient
    1 is subtracted at unit rate: w moves by −lr − 1."""
    strategy = DecoupledSumAux() if decoupled else SumAux()

    def loss(params):
        rl_loss = 0.001 * jnp.sum(params["w"])
        return regularised(strategy, {"params": params}, (), rl_loss, {})

    params = {"w": jnp.array([2.0, -3.0])}
    optimizer = optax.adam(0.01, eps=1e-12)
    step = descend(strategy, optimizer, loss, params, optimizer.init(params), ())
    moved = np.asarray(step.params["w"] - params["w"])
    np.testing.assert_allclose(moved, [-1.01, -1.01] if decoupled else [-0.01, -0.01], rtol=1e-5)
    # The metrics still measure both gradients apart, before any step.
    assert float(step.metrics["grad/rl_norm"]) == pytest.approx(0.001 * 2**0.5, rel=1e-4)
    assert float(step.metrics["grad/aux_norm"]) == pytest.approx(2**0.5)


def test_optimizer_steps_hand_values():
    # PPO: 64 envs × 128 steps per update, 4 epochs × 2 minibatches: 300k steps hold 36 updates.
    ppo = PPOConfig(num_envs=64, rollout_length=128, num_epochs=4, num_minibatches=2)
    assert ppo.optimizer_steps(300_000) == 36 * 8 == 288
    assert ppo.optimizer_steps(8_191) == 0
    # QMIX: 8 sequences of 50 steps per update; 32 sequences needed, so update 4 trains first.
    qmix = QMIXConfig(num_envs=8, segment_length=50, learning_starts=32, gradient_steps=4)
    assert qmix.optimizer_steps(3 * 400) == 0
    assert qmix.optimizer_steps(4 * 400) == 4
    assert qmix.optimizer_steps(10 * 400 + 399) == 7 * 4
    # MATD3: 16 envs × 8 steps = 128 per update; 10,000 steps first reached by update 79.
    matd3 = MATD3Config(num_envs=16, rollout_length=8, learning_starts=10_000, gradient_steps=8)
    assert matd3.optimizer_steps(78 * 128) == 0
    assert matd3.optimizer_steps(80 * 128) == 2 * 8


class _CountingEnv:
    """Three agents; obs = [t]; agent i earns i + 1 whatever it does; episodes last 2 steps."""

    spec = EnvSpec("count", 3, 1, 4, 1, "discrete", 2)

    def reset(self, key):
        del key
        obs = jnp.zeros((3, 1))
        return jnp.zeros((), jnp.int32), EnvStep.first(obs, jnp.ones((3, 4), bool), jnp.zeros(1))

    def step(self, key, t, action):
        del key, action
        t = t + 1
        end = t == 2
        reached = jnp.full((3, 1), t, jnp.float32)
        reward = jnp.arange(1.0, 4.0)
        step = EnvStep(
            obs=jnp.where(end, 0.0, reached),
            action_mask=jnp.ones((3, 4), bool),
            global_state=jnp.zeros(1),
            reward=reward,
            team_reward=jnp.sum(reward),
            terminated=jnp.asarray(False),
            truncated=end,
            final_obs=reached,
            final_global_state=jnp.zeros(1),
            won=jnp.asarray(False),
        )
        return jnp.where(end, 0, t), step


class _AgentIndexActor:
    """Agent i always plays action i."""

    env = _CountingEnv()
    spec = env.spec

    def initial_carry(self, num_envs):
        return jnp.zeros((num_envs,))

    def act(self, variables, carry, step, starts, key, greedy):
        del variables, step, starts, key, greedy
        return carry, jnp.broadcast_to(jnp.arange(3), (carry.shape[0], 3))


def test_seed_transitions_keep_each_agents_reward_and_episode_end_pairs():
    states = SimpleNamespace(variables=jnp.zeros((2,)), key=jax.random.split(jax.random.key(0)))
    data = seed_transitions(_AgentIndexActor(), states, num_envs=2, length=4)
    assert data.obs.shape == (2, 8, 3, 1)  # [S, T·E, N, D]
    # Each agent's own reward (1, 2, 3), not the team's 6 broadcast to all.
    np.testing.assert_array_equal(data.rewards, np.broadcast_to([1.0, 2.0, 3.0], (2, 8, 3)))
    np.testing.assert_array_equal(data.actions[0, 0], np.eye(4)[:3])
    # t = 0, 1, 0, 1 per env; the step from t = 1 ends the episode and reaches 2, not the reset 0.
    np.testing.assert_array_equal(data.obs[0, :, 0, 0], [0, 0, 1, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(data.next_obs[0, :, 0, 0], [1, 1, 2, 2, 1, 1, 2, 2])
