"""The strategy contract matrix: every strategy × input rank × agent count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.sharing.base import SharedDense
from tests.sharing.cases import strategy_cases
from tests.sharing.reference_only import Gains

IN_FEATURES, OUT_FEATURES = 7, 5
LEADING_SHAPES = {"N": (), "BN": (4,), "TBN": (3, 2)}
CASES = [(n, name) for n in (3, 6) for name in strategy_cases(n)]


@pytest.mark.parametrize("leading", list(LEADING_SHAPES))
@pytest.mark.parametrize(("num_agents", "name"), CASES)
def test_layer_contract(num_agents, name, leading):
    strategy = strategy_cases(num_agents)[name]
    layer = strategy.dense(
        OUT_FEATURES, num_agents, agent_id_input=strategy.agent_id_input, name="layer"
    )
    shape = (*LEADING_SHAPES[leading], num_agents)
    x_key, id_key, init_key = jax.random.split(jax.random.key(num_agents), 3)
    x = jax.random.normal(x_key, (*shape, IN_FEATURES))
    # Any agent id at any position, not only arange(N) along the agent axis.
    ids = jax.random.randint(id_key, shape, 0, num_agents)
    variables = layer.init(init_key, x, ids)

    traces = []

    @jax.jit
    def apply(variables, x, ids):
        traces.append(1)
        return layer.apply(variables, x, ids)

    y = apply(variables, x, ids)
    apply(variables, x + 1.0, ids)
    assert y.shape == (*shape, OUT_FEATURES)
    assert len(traces) == 1

    weights = [layer.effective_weight(variables, a) for a in range(num_agents)]
    kernels = jnp.stack([w for w, _ in weights])
    biases = jnp.stack([b for _, b in weights])
    expected = jnp.einsum("...d,...do->...o", x, kernels[ids]) + biases[ids]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("leading", list(LEADING_SHAPES))
@pytest.mark.parametrize("ids_kind", ["per-sample", "agent-major"])
def test_a_strategy_written_only_in_the_reference_form_computes_it(leading, ids_kind):
    """The default ``project`` applies ``agent_kernels`` on either layout: y = x (W ⊙ g_a) + b,
    computed here by hand."""
    num_agents = 3
    layer = Gains().dense(OUT_FEATURES, num_agents, name="layer")
    shape = (*LEADING_SHAPES[leading], num_agents)
    x = jax.random.normal(jax.random.key(5), (*shape, IN_FEATURES))
    if ids_kind == "agent-major":
        ids = np.arange(num_agents)
        expected_ids = np.broadcast_to(ids, shape)
    else:
        ids = expected_ids = jax.random.randint(jax.random.key(6), shape, 0, num_agents)
    variables = layer.init(jax.random.key(7), x, ids)
    p = variables["params"]
    y = jax.jit(lambda v, x: layer.apply(v, x, ids))(variables, x)
    gains = p["gains"][expected_ids]  # [..., O]
    expected = jnp.einsum("...d,do->...o", x, p["kernel"]) * gains + p["bias"]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    kernel, bias = layer.effective_weight(variables, 2)
    np.testing.assert_allclose(kernel, p["kernel"] * p["gains"][2], rtol=1e-6)
    np.testing.assert_allclose(bias, p["bias"])


@pytest.mark.parametrize("batch", [(4,), (2, 64)])
@pytest.mark.parametrize("name", list(strategy_cases(3)))
def test_agent_major_path_matches_per_sample_path(name, batch):
    """Static np.arange(N) ids take batched per-agent products; results and variables agree."""
    num_agents = 3
    strategy = strategy_cases(num_agents)[name]
    layer = strategy.dense(
        OUT_FEATURES, num_agents, agent_id_input=strategy.agent_id_input, name="layer"
    )
    x = jax.random.normal(jax.random.key(1), (*batch, num_agents, IN_FEATURES))
    static_ids = np.arange(num_agents)
    traced_ids = jnp.broadcast_to(jnp.arange(num_agents), x.shape[:-1])
    variables = layer.init(jax.random.key(2), x, static_ids)
    per_sample_variables = layer.init(jax.random.key(2), x, traced_ids)
    assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(
        per_sample_variables
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(variables),
        jax.tree_util.tree_leaves(per_sample_variables),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    fast = jax.jit(lambda v, x: layer.apply(v, x, static_ids))(variables, x)
    slow = jax.jit(lambda v, x, ids: layer.apply(v, x, ids))(variables, x, traced_ids)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(strategy_cases(3)))
def test_layers_come_from_the_declared_layer_class(name):
    """``dense`` builds ``layer_class``; ``recurrent_dense`` a SharedDense or the same class."""
    strategy = strategy_cases(3)[name]
    assert type(strategy.dense(OUT_FEATURES, 3)) is strategy.layer_class
    recurrent = strategy.recurrent_dense(OUT_FEATURES, 3)
    expected = SharedDense if strategy.shared_recurrent else strategy.layer_class
    assert type(recurrent) is expected


def test_a_registered_strategy_is_found_by_name():
    import dataclasses

    from prism_marl.errors import ConfigError
    from prism_marl.presets import build_run_config
    from prism_marl.sharing import STRATEGIES, FuPS, register_strategy

    @dataclasses.dataclass(frozen=True)
    class Mine(FuPS):
        name = "mine-test"

    try:
        register_strategy(Mine)
        assert build_run_config(sharing="mine-test").sharing == Mine()
        with pytest.raises(ConfigError, match="already registered"):
            register_strategy(dataclasses.dataclass(frozen=True)(type("Other", (Mine,), {})))
        with pytest.raises(ConfigError, match="not a named SharingStrategy"):
            register_strategy(int)
    finally:
        STRATEGIES.pop("mine-test", None)
