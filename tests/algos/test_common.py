"""The scaffolding every algorithm shares: gradient norms measured apart, optimiser steps."""

import dataclasses

import jax.numpy as jnp
import optax
import pytest

from prism_marl.algos.common import descend, regularised
from prism_marl.algos.matd3 import MATD3Config
from prism_marl.algos.ppo import PPOConfig
from prism_marl.algos.qmix import QMIXConfig
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
