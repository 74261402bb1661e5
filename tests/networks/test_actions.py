"""The policies' action distributions (``networks.actions``) against hand-derived values."""

import jax.numpy as jnp
import pytest

from prism_marl.networks.actions import output_spread
from prism_marl.networks.heads import MASKED_LOGIT


def test_output_spread_hand_values():
    # Discrete: spreads 3 − (−1) = 4 and 2 − 0 = 2 (the masked logit is left out): mean 3.
    logits = jnp.array([[3.0, -1.0, 0.5], [2.0, 0.0, MASKED_LOGIT]])
    assert float(output_spread(logits, jnp.ones((2, 3), bool), "discrete")) == pytest.approx(3.0)
    # Continuous: |μ| / σ over real dimensions: |2| / e^0 and |−1| / e^{log 0.5} -> (2 + 2) / 2.
    mean = jnp.array([[2.0, -1.0, 9.0]])
    log_std = jnp.log(jnp.array([[1.0, 0.5, 1.0]]))
    mask = jnp.array([True, True, False])
    assert float(output_spread((mean, log_std), mask, "continuous")) == pytest.approx(2.0)
