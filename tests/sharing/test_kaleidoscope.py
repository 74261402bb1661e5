"""Kaleidoscope's masked kernels (sharing/kaleidoscope.py) against their plain formulas."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.resources import NetworkShape, build_network, example_inputs
from prism_marl.sharing import Kaleidoscope
from prism_marl.sharing.base import map_layers, named_layers
from prism_marl.sharing.masked import (
    binary_spread,
    keep_masks,
    pairwise_masked_distance,
    soft_threshold,
    threshold_unit,
)


def plain_soft_threshold(kernel, thresholds):
    return jnp.sign(kernel) * jax.nn.relu(jnp.abs(kernel) - jax.nn.sigmoid(thresholds))


def test_soft_threshold_has_autodiffs_value_and_gradients():
    """Some weights pruned, some kept, per mask; vmapped over seeds as training runs it."""
    keys = jax.random.split(jax.random.key(0), 3)
    kernel = jax.random.normal(keys[0], (2, 5, 4))  # 2 seeds, D = 5, O = 4
    thresholds = jax.random.normal(keys[1], (2, 3, 5, 4))  # M = 3 masks
    weights = jax.random.normal(keys[2], (2, 3, 5, 4))

    def loss(masking):
        def one(kernel, thresholds, w):
            return jnp.sum(jnp.sin(masking(kernel, thresholds)) * w)

        return jax.vmap(jax.value_and_grad(one, argnums=(0, 1)))

    kept = np.abs(kernel)[:, None] > jax.nn.sigmoid(thresholds)
    assert 0.1 < kept.mean() < 0.9  # both branches exercised
    plain = loss(plain_soft_threshold)(kernel, thresholds, weights)
    ours = loss(soft_threshold)(kernel, thresholds, weights)
    for got, want in zip(jax.tree.leaves(ours), jax.tree.leaves(plain), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_soft_threshold_kernel_gradient_by_hand():
    """∂/∂W of Σ_m Σ W_m·w is Σ_m w_m where |W| > σ(S_m): here masks 0 and 2 keep W[0, 0]."""
    kernel = jnp.array([[0.9, -0.1]])
    thresholds = jnp.array([[[-3.0, 5.0]], [[9.0, 9.0]], [[0.0, -9.0]]])  # σ: .05, 1, .5
    weights = jnp.array([[[1.0, 1.0]], [[10.0, 10.0]], [[100.0, 100.0]]])
    grad = jax.grad(lambda k: jnp.sum(soft_threshold(k, thresholds) * weights))(kernel)
    # |W[0, 0]| = 0.9 beats σ = 0.05 and 0.5 (masks 0, 2), not σ(9) ≈ 1; |W[0, 1]| = 0.1
    # beats σ(-9) ≈ 1.2e-4 only (mask 2).
    np.testing.assert_allclose(grad, [[101.0, 100.0]], rtol=1e-6)


def test_diversity_term_moves_thresholds_only():
    """Kaleidoscope's diversity term: no gradient reaches the shared kernel (|W| detached)."""
    strategy = Kaleidoscope()
    layer = strategy.dense(4, 3, depth=1, name="layer")
    variables = layer.init(jax.random.key(0), jnp.ones((3, 5)), jnp.arange(3))
    params = dict(variables["params"])
    # Masks that differ: mask 0 prunes every weight, the others almost nothing.
    params["thresholds"] = params["thresholds"].at[0].set(9.0)

    def diversity(p):
        return strategy.diversity({**variables, "params": p})["diversity"]

    assert float(diversity(params)) > 0
    grads = jax.grad(diversity)(params)
    np.testing.assert_array_equal(grads["kernel"], 0.0)
    assert float(jnp.sum(jnp.abs(grads["thresholds"]))) > 0


def _pairwise_reference(kernel, thresholds, unit):
    """The pairwise form as written before: [M, M, D, O] differences, autodiff gradients."""
    masked = keep_masks(kernel, thresholds, unit) * jax.lax.stop_gradient(jnp.abs(kernel))
    return jnp.sum(jnp.abs(masked[:, None] - masked[None, :]))


@pytest.mark.parametrize("num_masks", [1, 2, 5])
def test_pairwise_distance_equals_the_pairwise_form(num_masks):
    """The O(M·D·O) distance has the pairwise form's value and threshold gradient, ties too.

    Ties: zero weights (every mask's a_m = 0), positions every mask keeps or prunes. The
    tanh straight-through estimator is nonlinear in the upstream gradient, so the check is on
    the thresholds' gradient, after it, with an upstream scale where tanh is far from linear.
    """
    kernel_key, threshold_key, pick_key = jax.random.split(jax.random.key(num_masks), 3)
    kernel = jax.random.normal(kernel_key, (6, 7)) * 0.5
    kernel = kernel.at[0].set(0.0)  # a row of exact zeros
    thresholds = jax.random.normal(threshold_key, (num_masks, 6, 7)) * 2.0
    thresholds = thresholds.at[:, 1].set(-20.0)  # kept by every mask
    thresholds = thresholds.at[:, 2].set(20.0)  # pruned by every mask
    pick = jax.random.bernoulli(pick_key, 0.5, thresholds.shape)
    thresholds = jnp.where(pick, thresholds, -thresholds)
    unit = jnp.asarray(0.7)

    def scaled(fn):
        return lambda k, s: 0.3 * fn(k, s, unit)

    np.testing.assert_allclose(
        pairwise_masked_distance(kernel, thresholds, unit),
        _pairwise_reference(kernel, thresholds, unit),
        rtol=1e-6,
    )
    ours = jax.grad(scaled(pairwise_masked_distance), argnums=(0, 1))(kernel, thresholds)
    reference = jax.grad(scaled(_pairwise_reference), argnums=(0, 1))(kernel, thresholds)
    np.testing.assert_allclose(ours[1], reference[1], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(ours[0], 0.0)
    np.testing.assert_array_equal(reference[0], 0.0)
    if num_masks > 1:
        assert float(jnp.sum(jnp.abs(ours[1]))) > 0


def test_binary_spread_by_hand():
    """Three masks, two keep position (0, 0), none keeps (0, 1): Σ 2·k·(M−k)·A = 2·2·1·3."""
    keep = jnp.array([[[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 0.0]]])  # [M=3, D=1, O=2]
    magnitude = jnp.array([[3.0, 5.0]])
    assert float(binary_spread(keep, magnitude)) == 12.0
    grad = jax.grad(binary_spread)(keep, magnitude)
    # Kept masks see M − k = 1 mask below them; the pruning mask sees k = 2 above it.
    np.testing.assert_array_equal(grad[:, 0, 0], [2 * 3.0 * 1, 2 * 3.0 * 1, -2 * 3.0 * 2])
    np.testing.assert_array_equal(grad[:, 0, 1], 0.0)  # every mask agrees: sign(0) = 0


# A recurrent categorical policy as MAPPO trains it: dense_0 -> GRU -> orthogonal(0.01) head.
SHAPE = NetworkShape(input_size=20, hidden_sizes=(64, 64), output_size=6, recurrent=True)
AGENTS = 3


@functools.cache
def policy_variables(**fields):
    strategy = Kaleidoscope(**fields)
    network = build_network(strategy, SHAPE, AGENTS)
    inputs = example_inputs(SHAPE, AGENTS)
    return strategy, network.init(jax.random.key(0), *inputs)


def pruned_fraction(variables, name, strategy):
    layer = dict(named_layers(variables["params"], frozenset({"kernel", "thresholds"})))[name]
    own = {"params": layer, "buffers": strategy_buffers(variables, name)}
    kernel = np.asarray(layer["kernel"])
    gate = np.asarray(keep_masks(kernel, layer["thresholds"], layer_unit(strategy, own, kernel)))
    return 1.0 - gate.mean()


def strategy_buffers(variables, name):
    node = variables["buffers"]
    for key in name.split("/"):
        node = node[key]
    return node


def layer_unit(strategy, own, kernel):
    if not strategy.relative_thresholds:
        return 1.0
    return threshold_unit(own["buffers"]["init_std"], kernel.shape[0])


def test_gru_kernels_are_not_masked():
    """The original's GRU is a plain nn.GRUCell: no thresholds on its input or recurrent kernels."""
    _, variables = policy_variables()
    masked = [p for p, _ in named_layers(variables["params"], frozenset({"thresholds"}))]
    assert masked == ["head/logits", "torso/dense_0"]
    assert "kernel" in variables["params"]["torso"]["input_kernels"]


def test_relative_thresholds_prune_the_small_head_as_little_as_the_original():
    """At init the orthogonal(0.01) head loses 1–2% of its weights, not 40–50%."""
    strategy, variables = policy_variables()
    assert pruned_fraction(variables, "head/logits", strategy) < 0.03
    assert pruned_fraction(variables, "torso/dense_0", strategy) < 0.03
    absolute, old = policy_variables(relative_thresholds=False)
    assert pruned_fraction(old, "head/logits", absolute) > 0.3


def test_threshold_unit_is_one_for_pytorchs_default_layer():
    """κ = 1 when the layer starts as the original's do, U(±1/√D)."""
    fan_in = 64
    kernel = jax.random.uniform(jax.random.key(1), (fan_in, 4096), minval=-1.0, maxval=1.0)
    kernel = kernel / np.sqrt(fan_in)
    assert float(threshold_unit(jnp.std(kernel), fan_in)) == pytest.approx(1.0, abs=0.01)


def everything_pruned(variables):
    def prune(layer, index):
        del index
        return {**layer, "thresholds": jnp.full_like(layer["thresholds"], 20.0)}

    params = map_layers(variables["params"], frozenset({"kernel", "thresholds"}), prune)
    return {**variables, "params": params}


@pytest.mark.parametrize("first", [False, True])
def test_reset_draws_at_the_layers_own_scale_and_spares_the_first_layer(first):
    strategy, variables = policy_variables(reset_ratio=1.0, reset_first_layer=first)
    variables = everything_pruned(variables)
    after = strategy.maintain(variables, jax.random.key(5), 999_999, 1_000_001, 10_000_000)
    before_params, after_params = variables["params"], after["params"]
    head, fresh = before_params["head"]["logits"], after_params["head"]["logits"]
    assert bool(jnp.all(fresh["kernel"] != head["kernel"]))
    # orthogonal(0.01) on [64, 6]: entries of std 0.01/8, where lecun_normal gives 1/8.
    assert float(jnp.std(fresh["kernel"])) == pytest.approx(0.01 / 8, rel=0.1)
    first_layer = before_params["torso"]["dense_0"]["kernel"]
    changed = bool(jnp.any(after_params["torso"]["dense_0"]["kernel"] != first_layer))
    assert changed == first
