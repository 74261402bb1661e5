"""``prism-marl bench``: its choice of settings, the layer benchmark's cases and FLOP floor (the
training timing itself is exercised in test_cli)."""

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.algos.matd3 import MATD3Config
from prism_marl.bench.flops import matmul_flops
from prism_marl.bench.layers import PRODUCTS, bench_layers, factored_loss, flop_floor, layer_loss
from prism_marl.bench.train import bench_algo_config, bench_env_config, default_strategies
from prism_marl.config import EnvConfig, default_algo_config
from prism_marl.presets import PRESETS
from prism_marl.sharing import STRATEGIES, Prism


def test_a_preset_sets_the_hyper_parameters_of_its_own_algorithm_only():
    timed = bench_algo_config("matd3", "matd3-mabrax")
    assert timed.batch_size == 1000 and timed.buffer_size == 1_000_000
    assert timed.actor_lr == PRESETS["matd3-mabrax"]["algo"]["actor_lr"]
    assert timed.rollout_length == MATD3Config().rollout_length  # not in the preset
    assert bench_algo_config("matd3", None) == MATD3Config()
    assert bench_algo_config("mappo", "matd3-mabrax") == default_algo_config("mappo")
    assert bench_algo_config("mappo", "lbf").num_envs == 32  # a MAPPO preset


def test_a_preset_sets_the_switches_of_its_own_environment_only():
    assert bench_env_config("mabrax:hopper_3x1", "matd3-mabrax") == EnvConfig(
        id="mabrax:hopper_3x1"
    )
    assert bench_env_config("smax:3m", "matd3-mabrax") == EnvConfig(id="smax:3m")
    assert bench_env_config("smax:3m", None) == EnvConfig(id="smax:3m")


def test_bench_train_times_every_strategy_on_lbf_and_three_on_the_heavy_families():
    assert default_strategies("lbf:8x8-2p-2f-coop") == list(STRATEGIES)
    assert len(STRATEGIES) == 7
    assert default_strategies("smax:smacv2_5_units") == ["fups", "nops", "prism"]
    assert default_strategies("mabrax:ant_4x2") == ["fups", "nops", "prism"]


def test_matmul_flops_count_every_step_of_a_scan_and_the_costlier_branch():
    kernel = jnp.ones((64, 32))
    square = jnp.ones((32, 32))

    def unroll(h):  # h [256, 32]: 50 steps of [256, 32] @ [32, 32]
        return jax.lax.scan(lambda c, _: (jnp.tanh(c @ square), None), h, None, length=50)[0]

    x = jnp.ones((256, 64))
    step = 2 * 256 * 32 * 32
    assert matmul_flops(lambda x: x @ kernel, x) == 2 * 256 * 64 * 32
    assert matmul_flops(unroll, x @ kernel) == 50 * step  # XLA's cost analysis says 1 step
    # vmap over 3 seeds and jit: three times the products.
    assert matmul_flops(jax.jit(jax.vmap(unroll)), jnp.ones((3, 256, 32))) == 3 * 50 * step
    # The gradient with respect to the input adds one product per step (dh = g Wᵀ).
    assert matmul_flops(jax.grad(lambda h: unroll(h).sum()), jnp.ones((256, 32))) == 100 * step

    def branchy(flag, h):
        return jax.lax.cond(flag, lambda h: (h @ square) @ square, lambda h: h @ square, h)

    assert matmul_flops(branchy, True, jnp.ones((256, 32))) == 2 * step

    def transpose_only(h):  # the vjp's forward product is never read, so never computed
        _, transpose = jax.vjp(lambda x: x @ square, h)
        return jax.lax.scan(lambda c, _: (transpose(c)[0], None), h, None, length=50)[0]

    assert matmul_flops(transpose_only, jnp.ones((256, 32))) == 50 * step


def test_layer_flop_floor_matches_the_hand_derived_bounds():
    # Full rank: min(2, 1 + N·R/B).
    assert flop_floor(num_agents=2, width=64, rank=64, batch=4096) == 1.0 + 128 / 4096
    assert flop_floor(num_agents=32, width=256, rank=256, batch=4096) == 2.0  # 1 + 2 capped
    # Lower rank: R·(D + O)/(D·O) = 2R/width.
    assert flop_floor(num_agents=8, width=256, rank=64, batch=4096) == 0.5
    assert flop_floor(num_agents=8, width=64, rank=32, batch=4096) == 1.0


def test_bench_layers_times_every_strategy_and_prism_at_three_ranks():
    rows = bench_layers(["prism", "nops", "seps"], agents=[2], widths=[8], batch=16, rounds=1)
    assert all(
        list(r)
        == ["strategy", "num_agents", "width", "rank", "seconds"] + ["ratio_to_fups", "flop_floor"]
        for r in rows
    )
    cases = [(r["strategy"], r["rank"]) for r in rows]
    prism = [("prism", 8), ("prism", 4), ("prism", 2), (PRODUCTS, 4), (PRODUCTS, 2)]
    assert cases == [("fups", None), *prism, ("nops", None), ("seps", None)]
    assert rows[0]["ratio_to_fups"] == 1.0 and all(r["seconds"] > 0 for r in rows)
    floors = {(r["strategy"], r["rank"]): r["flop_floor"] for r in rows if r["flop_floor"]}
    # N·R/B = 1 at full rank: capped at 2; the products' floor is the factored path's.
    assert floors == dict(zip(prism, [2.0, 1.0, 0.5, 1.0, 0.5], strict=True))


def test_factored_reference_is_prisms_layer_with_unit_spectra():
    """The ``factored-products`` rows time Prism's factored layer and loss minus the spectra:
    with s = 1 and masks at 1, Prism's layer has the same loss and gradients for U, V, b, x."""
    rank, num_agents = 3, 2
    layer = Prism(rank=rank, scaled_spectrum=False).dense(4, num_agents)  # s itself is 1
    x = jax.random.normal(jax.random.key(0), (num_agents, 6, 5))
    ids = np.arange(num_agents)[:, None]
    params = layer.init(jax.random.key(1), x, ids)["params"]
    params = {**params, "s": jnp.ones(rank), "mask_logits": jnp.full((num_agents, rank), 50.0)}
    params["bias"] = jax.random.normal(jax.random.key(2), (4,))

    def prism_loss(p, inputs):
        return layer_loss(layer.apply({"params": {**params, **p}}, inputs, ids))

    shared = {k: params[k] for k in ("U", "V", "bias")}
    want = jax.value_and_grad(prism_loss, argnums=(0, 1))(shared, x)
    got = jax.value_and_grad(factored_loss, argnums=(0, 1))(shared, x.reshape(-1, 5))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    for key in shared:
        np.testing.assert_allclose(got[1][0][key], want[1][0][key], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got[1][1], want[1][1].reshape(-1, 5), rtol=1e-4, atol=1e-6)
