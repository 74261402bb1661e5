"""dense_stack: the same numbers as layer-by-layer products on unflattened inputs."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.networks.plain import dense_stack


class Stack(nn.Module):
    prefix: str | None = None

    @nn.compact
    def __call__(self, x):
        return dense_stack(x, (5, 4), 3, jnp.tanh, prefix=self.prefix)


def test_dense_stack_matches_layer_by_layer_products_on_several_leading_axes():
    x = jax.random.normal(jax.random.key(0), (2, 3, 7, 6))
    params = Stack().init(jax.random.key(1), x)["params"]
    assert sorted(params) == ["Dense_0", "Dense_1", "Dense_2"]
    expected = x
    for k in range(3):
        layer = params[f"Dense_{k}"]
        expected = expected @ layer["kernel"] + layer["bias"]
        expected = jnp.tanh(expected) if k < 2 else expected
    out = Stack().apply({"params": params}, x)
    assert out.shape == (2, 3, 7, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_dense_stack_names_layers_by_prefix():
    params = Stack("hyper").init(jax.random.key(1), jnp.zeros((4, 6)))["params"]
    assert sorted(params) == ["hyper_0", "hyper_1", "hyper_2"]
