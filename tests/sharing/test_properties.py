"""Equivalences, regularisers and gradient flow of the individual strategies."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from prism_marl.algos.common import descend, regularised
from prism_marl.errors import ConfigError
from prism_marl.sharing import SNP, STRATEGIES, FuPS, Kaleidoscope, NoPS, Prism, SePS
from prism_marl.sharing.base import (
    AuxOutput,
    HasAgentMasks,
    Prepares,
    TracksLosses,
    accounting_form,
    agent_masks,
    init_aux_state,
    keep_pretrained,
    preparation_steps,
    update_aux_state,
)
from prism_marl.sharing.masked import keep_masks
from prism_marl.sharing.spectral import mask_values, mean_pairwise_distance, singular_values

N, D, O = 4, 6, 5
X = jax.random.normal(jax.random.key(7), (N, D))
IDS = jnp.arange(N)


def init(strategy, name="layer", features=O, num_agents=N):
    layer = strategy.dense(features, num_agents, name=name)
    return layer, layer.init(jax.random.key(0), X, IDS)


def test_prism_with_unit_masks_equals_its_dense_initialisation():
    prism_layer, prism_vars = init(Prism(mask="scale", mask_init_noise=0.0))
    dense_layer, dense_vars = init(FuPS())
    p = prism_vars["params"]
    np.testing.assert_allclose(p["mask_logits"], 1.0)
    usv = (p["U"] * singular_values(p, scaled=True)) @ p["V"].T  # W = U diag(s) Vᵀ, [O, D]
    np.testing.assert_allclose(usv.T, dense_vars["params"]["kernel"], atol=1e-5)
    for agent in range(N):
        kernel, _ = prism_layer.effective_weight(prism_vars, agent)
        np.testing.assert_allclose(kernel, dense_vars["params"]["kernel"], atol=1e-5)
    np.testing.assert_allclose(
        prism_layer.apply(prism_vars, X, IDS), dense_layer.apply(dense_vars, X, IDS), atol=1e-5
    )


def test_prism_scaled_spectrum_starts_as_the_plain_layer_and_steps_kappa_times_further():
    plain_layer, plain_vars = init(Prism(scaled_spectrum=False))
    scaled_layer, scaled_vars = init(Prism())  # the default since decision 0034
    kappa = np.sqrt(D * O / min(D, O))
    np.testing.assert_allclose(scaled_vars["params"]["s"] * kappa, plain_vars["params"]["s"])
    np.testing.assert_allclose(
        scaled_layer.apply(scaled_vars, X, IDS), plain_layer.apply(plain_vars, X, IDS), atol=1e-5
    )
    # One Adam step (lr η) moves every stored parameter by η, so s by κ·η scaled, η plain.
    lr = 1e-3

    def stepped(layer, variables):
        params = variables["params"]
        loss = lambda p: jnp.sum(layer.apply({"params": p}, X, IDS))  # noqa: E731
        optimizer = optax.adam(lr)
        updates, _ = optimizer.update(jax.grad(loss)(params), optimizer.init(params), params)
        return optax.apply_updates(params, updates)

    moved_plain = stepped(plain_layer, plain_vars)["s"] - plain_vars["params"]["s"]
    moved_scaled = (stepped(scaled_layer, scaled_vars)["s"] - scaled_vars["params"]["s"]) * kappa
    np.testing.assert_allclose(jnp.abs(moved_plain), lr, rtol=1e-3)
    np.testing.assert_allclose(jnp.abs(moved_scaled), kappa * lr, rtol=1e-3)


def test_prism_scaled_directions_start_as_the_plain_layer_and_turn_gain_times_further():
    """U = √D·Û, V = √O·V̂ (decision 0054's probe): the same layer, regularisers and
    diagnostics at the start; one Adam step moves each entry of U by √D·η, of V by √O·η; the
    renormalisation keeps the effective U's and V's columns at unit norm."""
    plain = Prism()
    scaled = Prism(scaled_directions=True, renormalise=True)
    plain_layer, plain_vars = init(plain)
    scaled_layer, scaled_vars = init(scaled)
    p, q = plain_vars["params"], scaled_vars["params"]
    np.testing.assert_allclose(q["U"] * np.sqrt(D), p["U"], atol=1e-6)
    np.testing.assert_allclose(q["V"] * np.sqrt(O), p["V"], atol=1e-6)
    np.testing.assert_allclose(
        scaled_layer.apply(scaled_vars, X, IDS), plain_layer.apply(plain_vars, X, IDS), atol=1e-5
    )
    for agent in range(N):
        for got, want in zip(
            scaled_layer.kernel_and_bias(scaled_vars, agent),
            plain_layer.kernel_and_bias(plain_vars, agent),
            strict=True,
        ):
            np.testing.assert_allclose(got, want, atol=1e-6)
    assert float(scaled.regularisers(scaled_vars)["orth"]) < 1e-10
    plain_w = plain.weight_diagnostics({"layer": p})
    scaled_w = scaled.weight_diagnostics({"layer": q})
    for key, value in plain_w.items():
        np.testing.assert_allclose(scaled_w[key], value, rtol=1e-5)
    lr = 1e-3
    loss = lambda params: jnp.sum(scaled_layer.apply({"params": params}, X, IDS))  # noqa: E731
    optimizer = optax.adam(lr)
    updates, _ = optimizer.update(jax.grad(loss)(q), optimizer.init(q), q)
    moved = optax.apply_updates(q, updates)
    np.testing.assert_allclose(
        jnp.abs(moved["U"] - q["U"]) * np.sqrt(D), np.sqrt(D) * lr, rtol=1e-2
    )
    np.testing.assert_allclose(
        jnp.abs(moved["V"] - q["V"]) * np.sqrt(O), np.sqrt(O) * lr, rtol=1e-2
    )
    grown = {**q, "U": q["U"] * jnp.array([2.0, 0.5, 3.0, 1.0, 1.5])}
    key, step = jax.random.key(0), jnp.asarray(0)
    kept = scaled.maintain({"params": {"actor": grown}}, key, step, step, 10)["params"]["actor"]
    np.testing.assert_allclose(jnp.linalg.norm(kept["U"] * np.sqrt(D), axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        scaled_layer.apply({"params": kept}, X, IDS),
        scaled_layer.apply({"params": grown}, X, IDS),
        atol=1e-5,
    )


def test_prism_renormalise_keeps_every_agents_layer_and_unit_columns():
    strategy = Prism(rank=3, scaled_spectrum=True, renormalise=True)
    layer, variables = init(strategy)
    params = dict(variables["params"])
    params["U"] = params["U"] * jnp.array([2.0, 0.5, 3.0])
    params["V"] = params["V"] + 0.2
    variables = {"params": params}
    key, step = jax.random.key(0), jnp.asarray(0)
    kept = strategy.maintain({"params": {"actor": params}}, key, step, step, 10)
    kept_layer = kept["params"]["actor"]
    np.testing.assert_allclose(jnp.linalg.norm(kept_layer["U"], axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(jnp.linalg.norm(kept_layer["V"], axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        layer.apply({"params": kept_layer}, X, IDS), layer.apply(variables, X, IDS), atol=1e-5
    )
    off = Prism(rank=3).maintain({"params": {"actor": params}}, key, step, step, 10)
    np.testing.assert_array_equal(off["params"]["actor"]["U"], params["U"])


def test_weight_diagnostics_hand_values():
    fups_params = {"actor": {"dense": {"kernel": jnp.array([[3.0, 0.0], [0.0, 4.0]])}}}
    assert float(FuPS().weight_diagnostics(fups_params)["weights/actor/dense/kernel_norm"]) == (
        pytest.approx(5.0)
    )
    # Orthonormal U and V, s = (3, 4), masks (1, 1) and (1, 0): spectra (3, 4) and (3, 0).
    eye = jnp.eye(2)
    logits = jnp.array([[50.0, 50.0], [50.0, -50.0]])
    prism_params = {
        "layer": {"U": eye, "V": eye, "s": jnp.array([3.0, 4.0]), "mask_logits": logits}
    }
    metrics = Prism(scaled_spectrum=False).weight_diagnostics(prism_params)
    assert float(metrics["weights/layer/s_max"]) == pytest.approx(3.5)  # (4 + 3) / 2
    assert float(metrics["weights/layer/s_mean"]) == pytest.approx(2.5)  # (3 + 4 + 3 + 0) / 4
    assert float(metrics["weights/layer/kernel_norm"]) == pytest.approx(4.0)  # (5 + 3) / 2


def test_prism_orthogonality_zero_at_init_positive_after_perturbation():
    strategy = Prism(lambda_div=0.0)
    _, variables = init(strategy)
    terms = strategy.regularisers(variables)
    assert float(terms["orth"]) < 1e-10
    params = dict(variables["params"])
    params["U"] = params["U"] + 0.1
    assert float(strategy.regularisers({"params": params})["orth"]) > 1e-3


def test_prism_decoupled_orthogonality_step_contracts_by_one_minus_eight_lambda():
    """Decoupled (decision 0054), one step with no RL loss is θ ← θ − λ_orth·∇L_orth, and
    ∇_U ‖UᵀU − I‖² = 4U(UᵀU − I) shrinks E = UᵀU − I to about (1 − 8λ)E, so L_orth, a sum
    of ‖E‖², to about (1 − 8λ)²: 0.64 at λ = 0.025 (to first order in E)."""
    strategy = Prism(lambda_div=0.0, lambda_orth=0.025, regularise="decoupled")
    assert strategy.decoupled_aux and not Prism().decoupled_aux
    _, variables = init(strategy)
    params = dict(variables["params"])
    params["U"] = params["U"] * 1.01  # E = (1.01² − 1)·I: small, all on the diagonal
    before = float(strategy.regularisers({"params": params})["orth"])

    def loss(params):
        return regularised(strategy, {"params": params}, (), jnp.zeros(()), {})

    optimizer = optax.adam(1e-3)
    step = descend(strategy, optimizer, loss, params, optimizer.init(params), ())
    after = float(strategy.regularisers({"params": step.params})["orth"])
    assert after / before == pytest.approx((1 - 8 * 0.025) ** 2, rel=0.05)


def test_prism_diversity_zero_for_identical_masks_and_hand_value():
    strategy = Prism(lambda_orth=0.0, lambda_div=1.0)
    _, variables = init(strategy)
    params = dict(variables["params"])
    params["mask_logits"] = jnp.zeros((N, O))
    out = strategy.aux_loss({"params": params}, ())
    assert float(out.metrics["prism/mask_distance"]) == 0.0
    # Masks 0/1 via huge logits: agents 0,1 = (1,1,1,1,1); agents 2,3 = (0,0,0,0,0)
    # pairs differing: 4 of 6, each at distance 5/5 = 1 -> D = 4/6.
    params["mask_logits"] = jnp.array([[50.0] * O, [50.0] * O, [-50.0] * O, [-50.0] * O])
    out = strategy.aux_loss({"params": params}, ())
    assert float(out.metrics["prism/mask_distance"]) == pytest.approx(4 / 6, abs=1e-6)
    assert float(out.loss) == pytest.approx(-4 / 6, abs=1e-6)


@pytest.mark.parametrize("diversity_on", ["masks", "spectra"])
def test_prism_scale_mask_diversity_bounded_for_large_masks(diversity_on):
    strategy = Prism(mask="scale", lambda_orth=0.0, lambda_div=0.3, diversity_on=diversity_on)
    _, variables = init(strategy)
    params = dict(variables["params"])
    logits = jax.random.normal(jax.random.key(3), (N, O))
    distances = []
    for c in (1.0, 1e3):
        params["mask_logits"] = c * logits
        out = strategy.aux_loss({"params": params}, ())
        assert -strategy.lambda_div <= float(out.loss) <= 0.0
        distances.append(float(out.metrics["prism/mask_distance"]))
    assert distances[1] == pytest.approx(distances[0], rel=1e-5)


@pytest.mark.parametrize("mask", ["sigmoid", "hard"])
@pytest.mark.parametrize("diversity_on", ["masks", "spectra"])
def test_prism_bounded_masks_keep_the_plain_distance(mask, diversity_on):
    strategy = Prism(mask=mask, diversity_on=diversity_on)
    _, variables = init(strategy)
    p = variables["params"]
    masks = mask_values(p["mask_logits"], mask)
    weights = singular_values(p, scaled=True) if diversity_on == "spectra" else None
    expected = mean_pairwise_distance(masks, weights)
    assert float(strategy.regularisers(variables)["diversity"]) == float(expected)


def test_prism_effective_rank_metric_per_agent():
    strategy = Prism()
    _, variables = init(strategy)
    params = dict(variables["params"])
    params["s"] = jnp.ones(O)
    params["mask_logits"] = jnp.array([[50.0] * O, [50.0, 50, -50, -50, -50]] * 2)
    ranks = strategy.aux_loss({"params": params}, ()).metrics["prism/effective_rank_per_agent"]
    np.testing.assert_allclose(ranks, [5.0, 2.0, 5.0, 2.0], rtol=1e-5)


def loss_on_agent(layer, agent):
    def loss(params, variables):
        full = {**variables, "params": params}
        return jnp.sum(layer.apply(full, X[agent : agent + 1], jnp.array([agent])) ** 2)

    return loss


def test_nops_gradients_are_isolated_per_agent():
    layer, variables = init(NoPS())
    grads = jax.grad(loss_on_agent(layer, 2))(variables["params"], variables)
    norms = jnp.sum(jnp.abs(grads["group_kernel"]), axis=(1, 2))
    assert float(norms[2]) > 0
    np.testing.assert_array_equal(np.delete(np.asarray(norms), 2), 0.0)


def test_seps_gradients_are_isolated_per_cluster():
    layer, variables = init(SePS(cluster_of_agent=(0, 1, 0, 1)))
    grads = jax.grad(loss_on_agent(layer, 3))(variables["params"], variables)
    norms = jnp.sum(jnp.abs(grads["group_kernel"]), axis=(1, 2))
    assert float(norms[1]) > 0 and float(norms[0]) == 0.0


def test_seps_extremes_equal_fups_and_nops():
    seps_layer, seps_vars = init(SePS(cluster_of_agent=(0,) * N))
    fups_layer, _ = init(FuPS())
    fups_vars = {
        "params": {
            "kernel": seps_vars["params"]["group_kernel"][0],
            "bias": seps_vars["params"]["group_bias"][0],
        }
    }
    np.testing.assert_allclose(
        seps_layer.apply(seps_vars, X, IDS), fups_layer.apply(fups_vars, X, IDS), atol=1e-6
    )
    seps_layer, seps_vars = init(SePS(cluster_of_agent=tuple(range(N))))
    nops_layer, nops_vars = init(NoPS())
    np.testing.assert_allclose(
        seps_layer.apply(seps_vars, X, IDS), nops_layer.apply(nops_vars, X, IDS), atol=1e-6
    )


def test_seps_adopts_pretrained_network_in_every_cluster():
    strategy = SePS()
    _, pretrained = init(strategy)
    prepared = SePS(cluster_of_agent=(0, 1, 1, 0))
    _, fresh = init(prepared)
    adopted = prepared.adopt_pretrained(pretrained, fresh)
    for k in range(2):
        np.testing.assert_array_equal(
            adopted["params"]["group_kernel"][k], pretrained["params"]["group_kernel"][0]
        )
    only_first = SePS(cluster_of_agent=(0, 1, 1, 0), copy_init=False)
    adopted = only_first.adopt_pretrained(pretrained, fresh)
    np.testing.assert_array_equal(
        adopted["params"]["group_kernel"][1], fresh["params"]["group_kernel"][1]
    )


def test_seps_adopts_each_seeds_own_cluster_table():
    _, pretrained = init(SePS())
    prepared = SePS(prepared_clusters=2)
    layer, fresh = init(prepared)
    np.testing.assert_array_equal(fresh["buffers"]["group_of_agent"], [0, 1, 0, 1])
    tables = jnp.array([[0, 0, 1, 1], [1, 0, 0, 0]], jnp.int32)
    both = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), (pretrained, fresh))
    adopted = jax.vmap(prepared.adopt_pretrained)(*both, tables)
    np.testing.assert_array_equal(adopted["buffers"]["group_of_agent"], tables)
    kernels = adopted["params"]["group_kernel"]  # [S, K, D, O], the pretrained one everywhere
    np.testing.assert_array_equal(kernels[:, 1], kernels[:, 0])


def test_seps_per_seed_tables_route_each_seeds_agents_to_its_own_clusters():
    """One program, two seeds' tables in buffers: each seed computes what a layer with its
    table fixed computes (the old static table gave both seeds the same clusters)."""
    layer, variables = init(SePS(prepared_clusters=2))
    tables = jnp.array([[0, 0, 1, 1], [1, 0, 0, 1]], jnp.int32)
    stacked = {
        "params": jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), variables["params"]),
        "buffers": {"group_of_agent": tables},
    }
    agent_major = np.arange(N)  # static ids: the batched agent-major path
    for ids in (IDS, agent_major):
        outputs = jax.vmap(lambda v, ids=ids: layer.apply(v, X, ids))(stacked)
        for seed in range(2):
            fixed = SePS(cluster_of_agent=tuple(int(g) for g in tables[seed]))
            fixed_layer, _ = init(fixed)
            expected = fixed_layer.apply({"params": variables["params"]}, X, IDS)
            np.testing.assert_allclose(outputs[seed], expected, atol=1e-6)
    assert not np.allclose(outputs[0], outputs[1])
    kernel, _ = layer.effective_weight(jax.tree_util.tree_map(lambda x: x[1], stacked), 0)
    np.testing.assert_array_equal(kernel, variables["params"]["group_kernel"][1])
    used_one = {**variables, "buffers": {"group_of_agent": jnp.zeros(N, jnp.int32)}}
    # One cluster used of two: no network beyond the first, N cluster indices.
    assert SePS(prepared_clusters=2).additional_resource(used_one, N) == N
    assert SePS(prepared_clusters=2).additional_resource(variables, N) == N + D * O + O


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_each_capability_is_had_by_the_strategies_that_need_it(name):
    """Only SePS prepares, only Kaleidoscope tracks losses, only Prism draws agent masks; the
    helpers answer for the others as if they had the capability's neutral form."""
    strategy = STRATEGIES[name]()
    assert isinstance(strategy, Prepares) == (name == "seps")
    assert isinstance(strategy, TracksLosses) == (name == "kaleidoscope")
    assert isinstance(strategy, HasAgentMasks) == (name == "prism")
    if name != "seps":
        assert preparation_steps(strategy) == 0 and accounting_form(strategy, 5, 3) is strategy
    if name != "kaleidoscope":
        assert init_aux_state(strategy) == ()
        assert update_aux_state(strategy, (), jnp.ones(()), AuxOutput(jnp.zeros(()), {})) == ()
    if name != "prism":
        assert agent_masks(strategy, init(strategy)[1]) == {}


def test_keep_pretrained_carries_the_trained_variables_over():
    _, variables = init(FuPS())
    assert keep_pretrained(variables, None) is variables


def test_seps_accounting_form_is_round_robin_until_prepared():
    assert SePS().accounting_form(5, 3).cluster_of_agent == (0, 1, 2, 0, 1)
    assert SePS(num_clusters=2).accounting_form(5, 3).cluster_of_agent == (0, 1, 0, 1, 0)
    assert SePS().accounting_form(2, 3).cluster_of_agent == (0, 1)
    prepared = SePS(cluster_of_agent=(0, 0, 1))
    assert prepared.accounting_form(3, 2) is prepared
    assert SePS(pretrain_steps=5).preparation_steps == 5
    assert prepared.preparation_steps == 0
    assert SePS(prepared_clusters=2).preparation_steps == 0
    assert SePS(prepared_clusters=2).accounting_form(3, 3) == SePS(prepared_clusters=2)


def test_seps_needs_pretraining_steps():
    """0 steps would mean no preparation: one cluster for the whole run."""
    with pytest.raises(ConfigError, match="pretrain-steps"):
        SePS(pretrain_steps=0)


def test_snp_masks_are_buffers_and_pruned_neurons_get_no_gradient():
    layer, variables = init(SNP(prune_ratio=0.5))
    assert "neuron_mask" in variables["buffers"] and "neuron_mask" not in variables["params"]
    mask = np.asarray(variables["buffers"]["neuron_mask"])
    assert set(np.unique(mask)) <= {0.0, 1.0}
    agent = int(np.argmax((mask == 0).any(axis=1)))
    assert (mask[agent] == 0).any()
    grads = jax.grad(loss_on_agent(layer, agent))(variables["params"], variables)
    columns = np.abs(np.asarray(grads["kernel"])).sum(axis=0)
    np.testing.assert_array_equal(columns[mask[agent] == 0], 0.0)
    assert (columns[mask[agent] == 1] > 0).all()
    y = layer.apply(variables, X, IDS)
    np.testing.assert_array_equal(np.asarray(y)[mask == 0], 0.0)


def test_snp_does_not_prune_output_layers():
    layer = SNP(prune_ratio=0.9).dense(O, N, hidden=False)
    variables = layer.init(jax.random.key(0), X, IDS)
    assert "buffers" not in variables


def test_kaleidoscope_thresholds_get_gradient_through_straight_through_estimator():
    strategy = Kaleidoscope()
    layer, variables = init(strategy)
    params = dict(variables["params"])
    # Make some weights pruned by some masks so that the masks differ.
    params["thresholds"] = params["thresholds"].at[0].set(0.0)

    def div(p):
        return strategy.diversity({**variables, "params": p})["diversity"]

    grads = jax.grad(div)(params)
    assert float(jnp.sum(jnp.abs(grads["thresholds"]))) > 0
    # The hard mask itself is binary in the forward pass.
    masks = keep_masks(params["kernel"], params["thresholds"])
    assert set(np.unique(np.asarray(masks))) <= {0.0, 1.0}


def test_kaleidoscope_adaptive_coefficient():
    strategy = Kaleidoscope(alpha=2.0, loss_history=3)
    state = strategy.init_aux_state()
    assert float(strategy.coefficient(state)) == 0.0
    _, variables = init(strategy)
    aux = strategy.aux_loss(variables, state)
    for rl in (1.0, 2.0, 3.0, 4.0):
        fake = aux._replace(metrics={**aux.metrics, "kaleidoscope/div_loss": jnp.asarray(-0.5)})
        state = strategy.update_aux_state(state, jnp.asarray(rl), fake)
    # history keeps the last 3 RL losses (2, 3, 4): |2 · 3 / −0.5| = 12
    assert float(strategy.coefficient(state)) == pytest.approx(12.0)


def test_kaleidoscope_reset_changes_only_positions_every_mask_prunes():
    strategy = Kaleidoscope(reset_interval=10, reset_ratio=1.0, reset_first_layer=True)
    _, variables = init(strategy)
    params = dict(variables["params"])
    thresholds = np.full((N, D, O), -8.0, np.float32)
    thresholds[:, 0, :] = 8.0  # row 0 pruned by every mask
    thresholds[1:, 1, :] = 8.0  # row 1 pruned by all masks but mask 0
    params["thresholds"] = jnp.asarray(thresholds)
    variables = {**variables, "params": params}
    after = strategy.maintain(variables, jax.random.key(3), jnp.asarray(9), jnp.asarray(11), 100)
    changed = np.asarray(after["params"]["kernel"] != params["kernel"])
    assert changed[0].all() and not changed[1:].any()
    t_changed = np.asarray(after["params"]["thresholds"] != params["thresholds"])
    assert t_changed[:, 0].all() and not t_changed[:, 1:].any()
    # Not due: no step multiple crossed, or inside the last interval.
    same = strategy.maintain(variables, jax.random.key(3), jnp.asarray(11), jnp.asarray(12), 100)
    np.testing.assert_array_equal(same["params"]["kernel"], params["kernel"])
    late = strategy.maintain(variables, jax.random.key(3), jnp.asarray(95), jnp.asarray(100), 100)
    np.testing.assert_array_equal(late["params"]["kernel"], params["kernel"])
