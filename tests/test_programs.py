"""The jitted programs a run executes: no batched LAPACK call anywhere (such a call can deadlock
XLA's CPU pool, docs/decisions/0014-no-batched-lapack.md), and every algorithm starts and trains
one chunk with 3 seeds on a task of three or more agents in each family it supports."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.algos import make_algorithm
from prism_marl.config import EnvConfig, default_algo_config
from prism_marl.envs import make_env
from prism_marl.programs import (
    QUICK_COMPILE,
    batched_lapack_calls,
    donatable,
    evaluations,
    init_seeds,
    quick_compile_options,
    train_chunks,
)
from prism_marl.sharing import STRATEGIES, SePS
from tests.conftest import TINY_ALGO

# Three agents in every family, so that anything vmapped over agents has a batch of three.
TASKS = {"lbf": "lbf:10x10-3p-3f", "smax": "smax:3m", "mabrax": "mabrax:hopper_3x1"}
# The default networks (their QR and SVD initialisers are what hung), short collections.
SMALLER = {
    "mappo": {"num_envs": 8, "rollout_length": 16},
    "ippo": {"num_envs": 8, "rollout_length": 16},
    "qmix": {"num_envs": 2, "segment_length": 8, "buffer_size": 16, "batch_size": 4,
             "learning_starts": 4},
    "vdn": {"num_envs": 2, "segment_length": 8, "buffer_size": 16, "batch_size": 4,
            "learning_starts": 4},
    "matd3": {"num_envs": 4, "rollout_length": 4, "buffer_size": 256, "batch_size": 16,
              "learning_starts": 16},
}  # fmt: skip
# Every algorithm file on every family it plays, each program built once: IPPO is MAPPO's
# programs with per-agent critics (lowered on LBF and SMAX; on MaBrax its programs differ from
# MAPPO's only by the critic, at 3 MaBrax minutes of CI) and VDN is QMIX's with a mixer that
# has no parameters (decision 0015).
PAIRS = [
    ("mappo", "lbf"),
    ("mappo", "smax"),
    ("mappo", "mabrax"),
    ("ippo", "lbf"),
    ("ippo", "smax"),
    ("qmix", "lbf"),
    ("qmix", "smax"),
    ("matd3", "mabrax"),
]
SEEDS = 3


@functools.cache
def env(family):
    return make_env(EnvConfig(id=TASKS[family], episode_limit=8))


def strategy(name):
    if name == "seps":  # prepared: two clusters of per-cluster (grouped) kernels
        return SePS(cluster_of_agent=(0, 1, 1))
    return STRATEGIES[name]()


def algorithm(algo, family, name):
    config = dataclasses.replace(default_algo_config(algo), **SMALLER[algo])
    return make_algorithm(algo, env(family), strategy(name), config, 10_000)


def keys():
    return jax.random.split(jax.random.PRNGKey(0), SEEDS)


def test_batched_lapack_calls_are_found_and_single_matrices_pass():
    def program(key):
        batch = jax.random.normal(key, (3, 64, 64))
        return jnp.linalg.qr(batch)[0], jnp.linalg.svd(batch[0])[0], jnp.linalg.qr(batch[:1])[0]

    found = batched_lapack_calls(jax.jit(program).lower(jax.random.PRNGKey(0)).as_text())
    assert found == [
        "lapack_sgeqrf_ffi tensor<3x64x64xf32>",
        "lapack_sorgqr_ffi tensor<3x64x64xf32>",
    ]


def lowered_programs(built, state, evaluation=True) -> dict:
    """The programs a run executes, lowered (traced, not compiled)."""
    programs = {
        "init": init_seeds(built).lower(keys()),
        "train chunk": train_chunks(built, 1).lower(state),
    }
    if evaluation:
        programs["evaluation"] = evaluations(built, 2).lower(state.variables, keys(), True)
    return programs


def batched_calls(algo, family, name, programs) -> dict:
    """{"algo + strategy on task: program": [calls]} for the programs holding batched calls."""
    found = {}
    for program, lowered in programs.items():
        calls = batched_lapack_calls(lowered.as_text())
        if calls:
            found[f"{algo} + {name} on {TASKS[family]}: {program}"] = calls
    return found


@pytest.mark.slow(minutes=1)
@pytest.mark.parametrize(("algo", "family"), PAIRS, ids=[f"{a}-{f}" for a, f in PAIRS])
def test_no_program_holds_a_batched_lapack_call(algo, family):
    """Every strategy but Prism, whose programs the start-up test below lowers and runs.

    Initialisers (QR, SVD) and Kaleidoscope's resets are where LAPACK calls come from: init
    and training chunks. Evaluation only applies the networks, which no strategy does with a
    factorisation; the start-up test lowers Prism's evaluation too.
    """
    found = {}
    for name in STRATEGIES:
        if name == "prism":
            continue
        built = algorithm(algo, family, name)
        state = jax.eval_shape(init_seeds(built), keys())
        programs = lowered_programs(built, state, evaluation=False)
        found.update(batched_calls(algo, family, name, programs))
    assert not found, found


@pytest.mark.slow(minutes=1)
@pytest.mark.parametrize(("algo", "family"), PAIRS, ids=[f"{a}-{f}" for a, f in PAIRS])
def test_three_seeds_start_and_train_a_chunk_on_three_agents(algo, family):
    """Prism's programs hold no batched LAPACK call, and the real init program and one training
    chunk run with 3 seeds: Prism's SVD and the orthogonal initialisers hung on 2 cores before
    decision 0014."""
    built = algorithm(algo, family, "prism")
    programs = lowered_programs(built, jax.eval_shape(init_seeds(built), keys()))
    assert not batched_calls(algo, family, "prism", programs)
    state = programs["init"].compile()(keys())
    leaves = jax.tree_util.tree_leaves(state.variables)
    assert all(leaf.shape[0] == SEEDS for leaf in leaves)
    assert any(not np.allclose(leaf[0], leaf[1]) for leaf in leaves)  # seeds differ
    state, metrics = programs["train chunk"].compile()(state)
    assert all(leaf.shape[0] == SEEDS for leaf in jax.tree_util.tree_leaves(state.variables))
    losses = {name: value for name, value in metrics.items() if name.startswith("loss/")}
    assert losses
    for name, value in losses.items():
        assert np.shape(value)[0] == SEEDS and np.all(np.isfinite(np.asarray(value))), name


@pytest.mark.parametrize("name", ["prism", "nops"])
def test_seeds_initialise_to_the_values_a_vmapped_init_draws(name):
    built = make_algorithm("mappo", env("lbf"), strategy(name), TINY_ALGO["mappo"], 10_000)
    mapped = init_seeds(built)(keys()).variables
    vmapped = jax.jit(jax.vmap(built.init))(keys()).variables
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), mapped, vmapped
    )


def test_grouped_kernels_are_the_per_group_draws_of_their_initialiser():
    from flax import linen as nn

    from prism_marl.sharing import NoPS

    layer = NoPS().dense(features=5, num_agents=3, kernel_init=nn.initializers.orthogonal())
    variables = layer.init(jax.random.key(0), jnp.ones((2, 3, 4)), jnp.arange(3))
    kernel = variables["params"]["group_kernel"]
    assert kernel.shape == (3, 4, 5)
    for group in range(3):  # each group's kernel is orthogonal: columns orthonormal (4 < 5 rows)
        np.testing.assert_allclose(kernel[group] @ kernel[group].T, np.eye(4), atol=1e-5)
    assert not np.allclose(kernel[0], kernel[1])


def test_one_evaluation_program_plays_both_modes_as_the_static_modes_do():
    """``evaluations`` takes the mode as an argument: one compile serves greedy and sampled
    play, and each mode's returns are those of an evaluation built for that mode alone."""
    built = make_algorithm("mappo", env("lbf"), strategy("prism"), TINY_ALGO["mappo"], 10_000)
    variables = init_seeds(built)(keys()).variables
    program = evaluations(built, 4)
    for greedy in (True, False):
        alone = jax.jit(jax.vmap(lambda v, k, g=greedy: built.evaluate(v, k, 4, g)))
        for got, want in zip(
            program(variables, keys(), greedy), alone(variables, keys()), strict=True
        ):
            np.testing.assert_array_equal(got, want)
    assert program._cache_size() == 1
    # The modes differ where it matters: argmax against samples, on 16 environments' first step.
    first = jax.tree_util.tree_map(lambda x: x[0], variables)
    _, step = jax.vmap(built.env.reset)(jax.random.split(jax.random.PRNGKey(1), 16))
    act = jax.jit(built.act)
    carry, starts, key = built.initial_carry(16), jnp.ones((16,), bool), jax.random.PRNGKey(2)
    greedy, sampled = (
        act(first, carry, step, starts, key, jnp.asarray(g))[1] for g in (True, False)
    )
    assert greedy.shape == (16, 3) and not np.array_equal(greedy, sampled)


def test_quick_compile_options_leave_the_users_xla_flags_in_charge(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    assert quick_compile_options() == QUICK_COMPILE
    assert QUICK_COMPILE == {
        "xla_backend_optimization_level": 1,
        "xla_cpu_use_fusion_emitters": False,
    }
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    assert quick_compile_options() == {"xla_cpu_use_fusion_emitters": False}


def test_donatable_copies_a_buffer_that_appears_twice():
    params = {"w": jnp.arange(3.0)}
    state = {"params": params, "target": params, "step": 1}
    donating = jax.jit(lambda s: jax.tree_util.tree_map(lambda x: x + 1, s), donate_argnums=0)
    with pytest.raises(Exception, match="donate the same buffer twice"):
        donating(state)
    ready = donatable(state)
    assert ready["params"]["w"] is params["w"] and ready["target"]["w"] is not params["w"]
    out = donating(ready)
    np.testing.assert_array_equal(out["target"]["w"], [1.0, 2.0, 3.0])
