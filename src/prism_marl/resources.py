"""Resource accounting (the paper's Figure 5) and the width solver (Figure 4's budgets).

Every count comes from a really initialised variable tree (``jax.eval_shape`` of the network's
``init``: the true shapes, without allocating N networks), the Adam state from
``optax.adam(...).init`` on those shapes, and FLOPs from XLA's cost analysis of the lowered
forward pass.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from prism_marl.errors import ConfigError, require
from prism_marl.networks.agents import Policy
from prism_marl.sharing import STRATEGIES, SharingStrategy, count_leaves
from prism_marl.sharing.base import accounting_form

DEFAULT_AGENT_COUNTS = tuple(2**k for k in range(1, 11))
LBF_8X8_2P_2F_OBS = 12  # lbforaging's vector observation: (x, y, level) per food and agent.
LBF_ACTIONS = 6


@dataclasses.dataclass(frozen=True)
class NetworkShape:
    """The network whose resources are counted: an MLP actor, or dense -> GRU -> head."""

    input_size: int = LBF_8X8_2P_2F_OBS
    """Observation features D."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden widths (for a GRU: the input layer's width, then the GRU's)."""
    output_size: int = LBF_ACTIONS
    """Actions A."""
    recurrent: bool = False
    """dense -> GRU -> head instead of an MLP."""

    def __post_init__(self) -> None:
        require(self.input_size >= 1, "input-size", "must be >= 1")
        require(self.output_size >= 1, "output-size", "must be >= 1")
        require(all(w >= 1 for w in self.hidden_sizes), "hidden-sizes", "widths must be >= 1")
        require(
            not self.recurrent or len(self.hidden_sizes) == 2,
            "hidden-sizes",
            "a GRU network takes exactly two widths (input layer, GRU)",
        )

    def with_width(self, width: int) -> NetworkShape:
        """The same shape with every hidden width set to ``width``."""
        return dataclasses.replace(self, hidden_sizes=(width,) * len(self.hidden_sizes))


class Resources(NamedTuple):
    """One row of the resource table."""

    strategy: str
    num_agents: int
    parameters: int
    additional: int
    normalized_overhead: float
    optimizer_bytes: int
    flops: float


def accounting_strategy(strategy: SharingStrategy, num_agents: int, groups: int) -> SharingStrategy:
    """``strategy`` as it would run with N agents (``sharing.base.accounting_form``).

    ``groups`` is the number of agent groups assumed where a strategy's grouping only comes
    from its preparation step (SePS: K = min(groups, N) clusters, agent i in cluster i mod K).
    """
    return accounting_form(strategy, num_agents, groups)


def build_network(strategy: SharingStrategy, shape: NetworkShape, num_agents: int) -> nn.Module:
    """The agent network that trains (``networks.agents.Policy``, categorical) for ``shape``."""
    return Policy(
        strategy,
        num_agents,
        shape.output_size,
        "discrete",
        shape.hidden_sizes,
        recurrent=shape.recurrent,
    )


def example_inputs(shape: NetworkShape, num_agents: int) -> tuple[Any, ...]:
    """Arguments of one forward step of all N agents, after the variables, as training passes.

    (hidden [N, H], obs [1, N, D], static ids [N], resets [1, N], action mask [1, N, A]).
    """
    hidden = shape.hidden_sizes[-1] if shape.recurrent else 1
    return (
        jnp.zeros((num_agents, hidden)),
        jnp.zeros((1, num_agents, shape.input_size)),
        np.arange(num_agents),
        jnp.zeros((1, num_agents), bool),
        jnp.ones((1, num_agents, shape.output_size), bool),
    )


def variable_shapes(strategy: SharingStrategy, shape: NetworkShape, num_agents: int) -> Any:
    """Shapes of the network's initialised variables (``params`` and ``buffers``)."""
    network = build_network(strategy, shape, num_agents)
    inputs = example_inputs(shape, num_agents)
    return jax.eval_shape(lambda key: network.init(key, *inputs), jax.random.key(0))


@functools.lru_cache(maxsize=4096)
def parameter_count(strategy: SharingStrategy, shape: NetworkShape, num_agents: int) -> int:
    """Trainable parameters of the network (the ``params`` collection).

    Memoised (strategies and shapes are frozen dataclasses): a sweep's budgets count the same
    networks many times, and each count traces the network's ``init``.
    """
    return count_leaves(variable_shapes(strategy, shape, num_agents)["params"])


def measure(
    strategy: SharingStrategy,
    shape: NetworkShape,
    num_agents: int,
    *,
    groups: int = 3,
    with_flops: bool = True,
) -> Resources:
    """Count parameters, additional resource, Adam state bytes and FLOPs per agent-step."""
    strategy = accounting_strategy(strategy, num_agents, groups)
    variables = variable_shapes(strategy, shape, num_agents)
    parameters = count_leaves(variables["params"])
    additional = strategy.additional_resource(variables, num_agents)
    opt_state = jax.eval_shape(optax.adam(1e-3).init, variables["params"])
    optimizer_bytes = sum(
        int(np.prod(leaf.shape)) * leaf.dtype.itemsize
        for leaf in jax.tree_util.tree_leaves(opt_state)
    )
    flops = float("nan")
    if with_flops:
        network = build_network(strategy, shape, num_agents)
        inputs = example_inputs(shape, num_agents)
        cost = jax.jit(network.apply).lower(variables, *inputs).cost_analysis()
        if isinstance(cost, Sequence):
            cost = cost[0] if cost else None
        if cost and "flops" in cost:
            flops = float(cost["flops"]) / num_agents
    return Resources(
        strategy=strategy.name,
        num_agents=num_agents,
        parameters=parameters,
        additional=additional,
        normalized_overhead=additional / (parameters + additional),
        optimizer_bytes=optimizer_bytes,
        flops=flops,
    )


def budget_target(target: str, shape: NetworkShape, num_agents: int) -> int:
    """Parameter target: ``full`` = NoPS's count, ``half`` = 50% of it, or a positive integer."""
    if target in ("full", "half"):
        nops = parameter_count(STRATEGIES["nops"](), shape, num_agents)
        return nops if target == "full" else nops // 2
    try:
        value = int(float(target))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"budget: must be full, half or a positive number, got {target!r}")
    return value


def solve_width(
    strategy: SharingStrategy,
    shape: NetworkShape,
    num_agents: int,
    target: int,
    *,
    groups: int = 3,
    max_width: int = 1 << 14,
) -> tuple[int, int]:
    """Hidden width whose trainable-parameter count is nearest ``target`` (ties: narrower).

    Counts grow monotonically with the width w, and a network's count is close to a quadratic
    c(w) = a·w² + b·w + c0 (exactly one for dense layers; ranks tied to w bend it). Three
    counts fit the quadratic, its root predicts the first width at or above the target, and a
    gallop from the prediction (steps 1, 2, 4, ...) followed by bisection finds that width
    exactly; the answer is it or its predecessor. Each count traces a network's ``init``
    (``parameter_count``), so this takes about five counts where bisection over
    [1, max_width] takes twenty.

    Returns:
        (width, parameter count at that width).
    """
    strategy = accounting_strategy(strategy, num_agents, groups)
    counts: dict[int, int] = {}

    def count(width: int) -> int:
        if width not in counts:
            counts[width] = parameter_count(strategy, shape.with_width(width), num_agents)
        return counts[width]

    guess = _predicted_width(count, max(shape.hidden_sizes), target, max_width)
    first = _first_width_reaching(count, target, guess, max_width)
    if first is None:
        return max_width, count(max_width)
    candidates = [(abs(count(w) - target), w) for w in {max(1, first - 1), first}]
    _, width = min(candidates)
    return width, count(width)


def _predicted_width(count: Any, width: int, target: int, max_width: int) -> int:
    """Root of the quadratic through the counts at width/2, width and 2·width, in [1, max]."""
    xs = np.array([max(1, width // 2), width, 2 * width], float)
    xs = np.unique(np.clip(xs, 1, max_width))
    if len(xs) < 3:
        return int(xs[-1])
    coefficients = np.polyfit(xs, [count(int(x)) for x in xs], 2)
    low, high = 1.0, float(max_width)  # bisection on the fitted curve: no more counts
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if np.polyval(coefficients, mid) >= target else (mid, high)
    return int(np.clip(np.ceil(high), 1, max_width))


def _first_width_reaching(count: Any, target: int, guess: int, max_width: int) -> int | None:
    """Smallest w in [1, max_width] with count(w) >= target, or None if there is none.

    Searched outwards from ``guess``: gallop (steps 1, 2, 4, ...) to a bracket, then bisect it.
    """
    step = 1
    if count(guess) >= target:
        high = guess  # count(high) >= target; look below it
        while high > 1:
            low = max(1, high - step)
            if count(low) < target:
                return _bisect(count, target, low + 1, high)
            high, step = low, step * 2
        return 1
    low = guess  # count(low) < target; look above it
    while low < max_width:
        high = min(max_width, low + step)
        if count(high) >= target:
            return _bisect(count, target, low + 1, high)
        low, step = high, step * 2
    return None


def _bisect(count: Any, target: int, low: int, high: int) -> int:
    """Smallest w in [low, high] with count(w) >= target, given count(high) >= target."""
    while low < high:
        mid = (low + high) // 2
        if count(mid) >= target:
            high = mid
        else:
            low = mid + 1
    return low
