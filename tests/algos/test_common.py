"""The gradient step every algorithm shares: gradient norms measured apart."""

import dataclasses

import jax.numpy as jnp
import optax
import pytest

from prism_marl.algos.common import descend, regularised
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
