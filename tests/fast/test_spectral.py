"""Prism's fast paths (fast/spectral.py): every path computes the layer, with its gradients;
the FLOP model's choices priced by hand; the loop hint's scope."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.fast import spectral
from prism_marl.fast.loops import kernels_reused, reused_kernels
from prism_marl.fast.spectral import factored_is_cheaper, folds_spectra
from prism_marl.sharing import Prism
from tests.sharing.cases import strategy_cases

IN_FEATURES, OUT_FEATURES = 7, 5


@pytest.mark.parametrize("layout", ["per-sample", "interleaved", "agents-first"])
@pytest.mark.parametrize("name", ["prism", "prism-rank2-hard-id"])
def test_prism_factored_and_matrix_paths_agree(monkeypatch, name, layout):
    """Prism's paths (chosen by cost) compute the same layer, with its gradients, on every
    layout: per-sample ids, agents interleaved (scaled spectra) and agents first with more
    rows per agent than singular values (spectra folded into per-agent Uᵀ)."""

    num_agents = 3
    strategy = strategy_cases(num_agents)[name]
    layer = strategy.dense(
        OUT_FEATURES, num_agents, agent_id_input=strategy.agent_id_input, name="layer"
    )
    if layout == "agents-first":
        x = jax.random.normal(jax.random.key(3), (num_agents, 20, IN_FEATURES))
        ids = np.arange(num_agents)[:, None]
        assert spectral.folds_spectra((1, num_agents, 20, IN_FEATURES), 5)
    else:
        x = jax.random.normal(jax.random.key(3), (2, 4, num_agents, IN_FEATURES))
        ids = np.arange(num_agents) if layout == "interleaved" else jnp.arange(num_agents)
        assert not spectral.folds_spectra((8, num_agents, 1, IN_FEATURES), 2)
    variables = layer.init(jax.random.key(4), x, ids)

    def loss(params):
        y = layer.apply({**variables, "params": params}, x, ids)
        return jnp.sum(jnp.sin(y)), y

    outputs = {}
    for factored in (True, False):
        monkeypatch.setattr(spectral, "factored_is_cheaper", lambda *_, f=factored, **__: f)
        outputs[factored] = jax.grad(loss, has_aux=True)(variables["params"])
    for a, b in zip(*(jax.tree.leaves(outputs[f]) for f in (True, False)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_prism_path_cost_model():
    """Hand-priced choices (agent-major, the factored path is charged 1.4x): full rank takes
    the matrix path unless building N matrices outweighs the product; inside a loop of T steps
    over fixed parameters each step pays 1/T of the build; per sample, N all-agent products
    make factored cheaper."""

    # D = O = R = 64, B = 128, N = 2: 1.4·128·64·128 = 1.47M > 2·64³ + 128·64² = 1.05M.
    assert not factored_is_cheaper(128, 2, 64, 64, 64, agent_major=True)
    # D = O = R = 256, B = 4096, N = 32 (bench layers): 1.4·4096·256·512 = 752M against
    # 32·256³ + 4096·256² = 805M: factored, unless one build serves 32 steps (285M).
    assert factored_is_cheaper(4096, 32, 256, 256, 256, agent_major=True)
    assert not factored_is_cheaper(4096, 32, 256, 256, 256, agent_major=True, reused=32)
    # Rank width/2, D = O = 64, R = 32, B = 4096, N = 2: equal FLOPs (16.8M + 0.26M to build),
    # so the charge keeps the matrix path.
    assert not factored_is_cheaper(4096, 2, 64, 64, 32, agent_major=True)
    # Reused over 32 steps, D = O = 64, B = 64: R = 16 gives 1.4·64·16·128 = 183k < 64·64² +
    # 2·64·16·64/32 = 266k; R = 32 gives 367k against 270k, the matrix path.
    assert factored_is_cheaper(64, 2, 64, 64, 16, agent_major=True, reused=32)
    assert not factored_is_cheaper(64, 2, 64, 64, 32, agent_major=True, reused=32)
    # 128 agents' rollout step (LBF 60x60, D = 6·128 = 768, O = R = 64, 2 environments:
    # B = 256): 1.4·256·64·832 = 19.1M against 256·768·64 + 128·768·64²/32 = 25.2M, factored;
    # with the build priced as free it took the matrix path (12.6M) and, as XLA rebuilt the
    # kernels' layout inside the loop, ran the chunk at 1.5x FuPS's time (decision 0048).
    assert factored_is_cheaper(256, 128, 768, 64, 64, agent_major=True, reused=32)
    assert not factored_is_cheaper(256, 128, 768, 64, 64, agent_major=True, reused=10**9)
    # Per sample, N = 3 (not charged): 128·64·128 = 1.05M < 3·64³ + 3·128·64² = 2.36M.
    assert factored_is_cheaper(128, 3, 64, 64, 64, agent_major=False)
    # Folded spectra are charged 1.1x: rank width/2, D = O = 256, R = 128, B = 4096, N = 8:
    # 1.1·4096·128·512 = 295M < 4096·256² + 8·256²·128 = 336M, where 1.4x (376M) is not.
    assert factored_is_cheaper(4096, 8, 256, 256, 128, agent_major=True, folded=True)
    assert not factored_is_cheaper(4096, 8, 256, 256, 128, agent_major=True)


def test_prism_folds_spectra_with_agents_first_and_four_rows_per_singular_value():

    assert folds_spectra((1, 8, 512, 256), 128)  # [P, N, Q, D]: Q = 512 = 4R rows per agent
    assert folds_spectra((1, 32, 128, 64), 16)  # Q = 8R
    assert not folds_spectra((1, 32, 128, 256), 64)  # Q = 2R
    assert not folds_spectra((1, 32, 128, 256), 128)  # Q = R
    assert not folds_spectra((64, 8, 8, 256), 4)  # agents interleaved (P > 1)


def test_reused_kernels_hint_is_scoped_to_its_block():
    """Layers traced inside ``reused_kernels(T)`` see T; outside, and after, 1 (no reuse)."""

    assert kernels_reused() == 1
    with reused_kernels(5):
        assert kernels_reused() == 5
        with reused_kernels(7):
            assert kernels_reused() == 7
        assert kernels_reused() == 5
    assert kernels_reused() == 1


def test_prism_takes_the_reused_path_inside_a_collection_loop(monkeypatch):
    """A Prism layer traced in a ``reused_kernels`` scan prices its paths as reused."""

    seen = []
    real = spectral.factored_is_cheaper

    def spy(*args, **kwargs):
        seen.append(kwargs["reused"])
        return real(*args, **kwargs)

    monkeypatch.setattr(spectral, "factored_is_cheaper", spy)
    layer = Prism().dense(OUT_FEATURES, 2)
    x = jnp.ones((4, 2, IN_FEATURES))
    ids = np.arange(2)
    variables = layer.init(jax.random.key(0), x, ids)
    seen.clear()

    def body(carry, _):
        return carry + layer.apply(variables, x, ids).sum(), None

    with reused_kernels(3):
        jax.lax.scan(body, 0.0, None, length=3)
    layer.apply(variables, x, ids)
    assert seen == [3, 1]
