"""``prism-marl bench layers``: one agent-indexed layer per strategy, forward and backward.

Each case is one strategy's dense layer (D = O = width inputs and outputs) applied to a batch of
B agent-steps laid out as the networks lay them out: agents first, x [N, B/N, D] with static
ids ``arange(N)[:, None]``, where agents' kernels differ (``fast.layout.AgentsFirst``), and
x [B/N, N, D] with ids ``arange(N)`` for FuPS and SNP,
under ``jit(value_and_grad)`` of a scalar loss (gradients for the parameters and the input, as
in a backward pass through a network). Cases of one (N, width) are compiled first and then
timed round-robin, so machine drift hits them alike; the reported seconds are the median over
rounds of the mean call time.

``flop_floor`` is the FLOP model's lower bound on Prism's time relative to FuPS's
(``SpectralDense``, docs/benchmarks.md): at full rank R = width Prism builds every agent's
W_i = U diag(s ⊙ m_i) Vᵀ (N·R·D·O) besides the batch's product (B·D·O), so the floor is
min(2, 1 + N·R/B); at R < width the factored path costs B·R·(D + O) against FuPS's B·D·O,
R·(D + O)/(D·O).

Where Prism is timed, each (N, width) also times ``factored-products`` rows at ranks width/2
and width/4: the factored path's layer without its spectra, (x V) Uᵀ + b, under the same loss
and gradients as every other row (``factored_loss``: no masks, no scaling, no agent layout),
the least time that path can take on this backend. Their ``ratio_to_fups`` says how far below
FuPS the factored path can go when its six thin products run at the machine's rate for such
shapes, which the FLOP floor does not model.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.sharing import STRATEGIES, Prism, SharingStrategy
from prism_marl.sharing.base import accounting_form

DEFAULT_AGENTS = (2, 8, 32)
DEFAULT_WIDTHS = (64, 256)
DEFAULT_BATCH = 4096
CALLS_PER_ROUND = 10


PRODUCTS = "factored-products"
"""The ``strategy`` of the reference rows: the factored path's products alone."""


class LayerCase(NamedTuple):
    """One timed case: its row's strategy name, Prism's rank, the strategy (or None).

    The rank is None except for Prism and the ``factored-products`` reference, whose strategy
    is None.
    """

    name: str
    rank: int | None
    strategy: SharingStrategy | None


def layer_loss(y: jax.Array) -> jax.Array:
    """The scalar every row differentiates: mean(y²) over a layer's outputs y [..., O]."""
    return jnp.mean(jnp.square(y))


def factored_loss(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """``layer_loss`` of the factored path without spectra: y = (x V) Uᵀ + b.

    Its gradient runs the path's six products (h = x V, y = h Uᵀ; g U, dx = (g U) Vᵀ,
    dV = xᵀ (g U), dU = gᵀ h) and the bias and loss terms every row has, but not the scaling
    by s ⊙ m_i.

    Args:
        params: ``V`` [D, R], ``U`` [O, R], ``bias`` [O].
        x: inputs [B, D].
    """
    return layer_loss((x @ params["V"]) @ params["U"].T + params["bias"])


def flop_floor(num_agents: int, width: int, rank: int, batch: int) -> float:
    """Lower bound of Prism's time relative to FuPS's from the FLOP model (D = O = width).

    Full rank (R = width): min(2, 1 + N·R/B); lower rank: R·(D + O)/(D·O) = 2R/width.
    """
    if rank >= width:
        return min(2.0, 1.0 + num_agents * rank / batch)
    return rank * (width + width) / (width * width)


def layer_cases(strategies: Sequence[str], width: int, num_agents: int) -> list[LayerCase]:
    """FuPS first (the reference), then each strategy; Prism at full rank, width/2, width/4.

    Strategies whose agent groups come from preparation are timed in their prepared form
    (SePS: three round-robin clusters, ``accounting_form``).
    """
    cases = [LayerCase("fups", None, STRATEGIES["fups"]())]
    for name in strategies:
        if name == "fups":
            continue
        if name == "prism":
            for rank in (width, width // 2, width // 4):
                cases.append(LayerCase(name, rank, Prism(rank=rank)))
            cases.extend(LayerCase(PRODUCTS, rank, None) for rank in (width // 2, width // 4))
            continue
        cases.append(LayerCase(name, None, accounting_form(STRATEGIES[name](), num_agents, 3)))
    return cases


def compiled_products(width: int, rank: int, batch: int) -> Callable[[], Any]:
    """A no-argument call of the jitted gradient of ``factored_loss`` (D = O = width), warm."""
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (batch, width))
    params = {
        "V": jax.random.normal(keys[1], (width, rank)),
        "U": jax.random.normal(keys[2], (width, rank)),
        "bias": jnp.zeros(width),
    }
    step = jax.jit(jax.value_and_grad(factored_loss, argnums=(0, 1)))
    jax.block_until_ready(step(params, x))

    def call() -> Any:
        return step(params, x)

    return call


def compiled_step(
    strategy: SharingStrategy, num_agents: int, width: int, batch: int
) -> Callable[[], Any]:
    """A no-argument call of the jitted forward and backward pass of one layer, warmed up."""
    layer = strategy.dense(width, num_agents)
    # Networks lay agents out first where agents' kernels differ (``fast.layout.AgentsFirst``).
    ids: np.ndarray
    if strategy.per_agent_kernels:
        shape, ids = (num_agents, batch // num_agents, width), np.arange(num_agents)[:, None]
    else:
        shape, ids = (batch // num_agents, num_agents, width), np.arange(num_agents)
    x = jax.random.normal(jax.random.key(0), shape)
    variables = layer.init(jax.random.key(1), x, ids)

    def loss(params: Any, inputs: jax.Array) -> jax.Array:
        return layer_loss(jnp.asarray(layer.apply({**variables, "params": params}, inputs, ids)))

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    params = variables["params"]
    jax.block_until_ready(step(params, x))

    def call() -> Any:
        return step(params, x)

    return call


def bench_layers(
    strategies: Sequence[str],
    agents: Sequence[int] = DEFAULT_AGENTS,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    batch: int = DEFAULT_BATCH,
    rounds: int = 4,
) -> list[dict[str, Any]]:
    """Rows ``strategy, num_agents, width, rank, seconds, ratio_to_fups, flop_floor``.

    ``seconds`` is one forward and backward pass; ``ratio_to_fups`` its ratio to FuPS's in the
    same (N, width); ``flop_floor`` is set on Prism's and the ``factored-products`` rows
    (``flop_floor``), which follow Prism's when it is timed.
    """
    rows = []
    for num_agents in agents:
        for width in widths:
            cases = layer_cases(strategies, width, num_agents)
            calls = [
                compiled_products(width, c.rank or width, batch)
                if c.strategy is None
                else compiled_step(c.strategy, num_agents, width, batch)
                for c in cases
            ]
            times: list[list[float]] = [[] for _ in cases]
            for _ in range(rounds):
                for call, spent in zip(calls, times, strict=True):
                    start = time.perf_counter()
                    for _ in range(CALLS_PER_ROUND):
                        out = call()
                    jax.block_until_ready(out)
                    spent.append((time.perf_counter() - start) / CALLS_PER_ROUND)
            medians = [statistics.median(spent) for spent in times]
            for case, seconds in zip(cases, medians, strict=True):
                floor = None
                if case.name in ("prism", PRODUCTS) and case.rank is not None:
                    floor = round(flop_floor(num_agents, width, case.rank, batch), 4)
                rows.append(
                    {
                        "strategy": case.name,
                        "num_agents": num_agents,
                        "width": width,
                        "rank": case.rank,
                        "seconds": seconds,
                        "ratio_to_fups": round(seconds / medians[0], 3),
                        "flop_floor": floor,
                    }
                )
    return rows
