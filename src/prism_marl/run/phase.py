"""What a run trains: its plan of chunks, its algorithm, and the phase change of a preparation.

A run trains in one phase, or in two for a strategy that ``Prepares`` (SePS pretrains
one shared network, clusters the agents, then trains one network per cluster). A ``Phase`` is
immutable: the change builds the next phase's algorithm from the prepared strategy and carries
every seed's variables over, leaving the phase it started from as it was.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from prism_marl.algos import Algorithm, Preparable, make_algorithm
from prism_marl.config import RunConfig
from prism_marl.envs import make_env
from prism_marl.envs.registry import env_factory
from prism_marl.errors import ConfigError
from prism_marl.programs import init_seeds
from prism_marl.sharing.base import Prepares, SharingStrategy, preparation_steps


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a run's steps divide into updates and chunks."""

    steps_per_update: int
    updates_per_chunk: int
    num_chunks: int

    @classmethod
    def of(cls, config: RunConfig) -> Plan:
        """Equal chunks of whole updates, at most ``eval_interval`` steps each, covering the run.

        The fewest chunks that keep evaluations at most ``eval_interval`` apart, then the fewest
        updates per chunk that cover ``total_steps``: a run overshoots by less than one update
        per chunk (rounding chunks up to ``eval_interval`` could add almost a whole interval).
        """
        per_update = config.algo_config.steps_per_update
        max_per_chunk = max(1, config.eval_interval // per_update)
        updates = max(1, math.ceil(config.total_steps / per_update))
        num_chunks = math.ceil(updates / max_per_chunk)
        return cls(per_update, math.ceil(updates / num_chunks), num_chunks)

    @property
    def chunk_steps(self) -> int:
        """Environment steps per seed in one chunk."""
        return self.steps_per_update * self.updates_per_chunk

    @property
    def total_steps(self) -> int:
        """Environment steps per seed the run trains in all (``total_steps`` rounded up)."""
        return self.num_chunks * self.chunk_steps


def build_algorithm(config: RunConfig, strategy: SharingStrategy | None = None) -> Algorithm:
    """The algorithm object for a run (with an explicit strategy after a preparation step).

    Equal settings give the same object within a process, so that ``programs``' memoised
    builders hand runs of equal settings the programs already compiled. The environment's
    factory is part of the setting: a family registered anew (``register_env(...,
    overwrite=True)``) builds a new algorithm.
    """
    setting = (
        config.algo,
        config.env,
        env_factory(config.env.id.partition(":")[0]),
        strategy or config.sharing,
        config.algo_config,
        Plan.of(config).total_steps,
    )
    try:
        return _algorithm(*setting)
    except TypeError:  # an unhashable setting (a list where a tuple belongs): build afresh
        return _algorithm.__wrapped__(*setting)


@functools.lru_cache(maxsize=16)
def _algorithm(
    name: str,
    env: Any,
    factory: Any,
    strategy: SharingStrategy,
    algo_config: Any,
    total_steps: int,
) -> Algorithm:
    del factory  # a key only: make_env reads the registry
    return make_algorithm(name, make_env(env), strategy, algo_config, total_steps)


def seed_keys(config: RunConfig) -> jax.Array:
    """One raw PRNG key per seed: fold_in(PRNGKey(seed), i)."""
    base = jax.random.PRNGKey(config.seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(config.num_seeds))


def prepare_strategy(
    config: RunConfig, algo: Algorithm, state: Any
) -> tuple[Algorithm, Any, dict[str, Any]]:
    """Host side, all seeds: prepare ``algo``'s strategy from ``state`` (SePS: cluster agents).

    Collects every seed's per-agent transitions with its current policy, lets the strategy
    prepare itself from them (each seed from its own), builds the algorithm for the prepared
    strategy and carries every seed's variables over with ``Preparation.adopt`` (fresh
    optimizer states). Returns the new algorithm, the new state and the preparation's record.
    """
    assert isinstance(algo, Preparable)  # checked when the phase was built
    data = algo.agent_transitions(state)
    assert isinstance(algo.strategy, Prepares)
    preparation = algo.strategy.prepare(data, jax.random.PRNGKey(config.seed + 7))
    new_algo = build_algorithm(config, preparation.strategy)
    fresh = init_seeds(new_algo)(seed_keys(config))
    adopted = jax.vmap(preparation.adopt)(state.variables, fresh.variables, preparation.per_seed)
    assert isinstance(new_algo, Preparable)  # built by the same factory
    return new_algo, new_algo.with_variables(state, adopted), dict(preparation.record)


class Change(NamedTuple):
    """A phase change: the next phase, every seed's state carried into it, and its record."""

    phase: Phase
    state: Any
    record: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a run: the config it trains and the algorithm built from it."""

    config: RunConfig
    algo: Algorithm

    @classmethod
    def first(cls, config: RunConfig) -> Phase:
        """The run's first phase (building the algorithm validates environment and algorithm).

        A strategy that prepares needs an algorithm with the ``Preparable`` capability.
        """
        algo = build_algorithm(config)
        if preparation_steps(algo.strategy) and not isinstance(algo, Preparable):
            raise ConfigError(
                f"sharing: {algo.strategy.name} prepares from the agents' transitions, which "
                f"{config.algo} does not provide (agent_transitions and with_variables)"
            )
        return cls(config, algo)

    def ends_before(self, chunk: int, plan: Plan) -> bool:
        """Whether this phase ends before ``chunk``: its preparation steps are all trained."""
        steps = preparation_steps(self.algo.strategy)
        return steps > 0 and chunk >= math.ceil(steps / plan.chunk_steps)

    def change(self, state: Any) -> Change:
        """The next phase, prepared from every seed's ``state`` (``prepare_strategy``).

        Its config names the prepared strategy, so that a resumed run rebuilds that phase.
        """
        algo, state, record = prepare_strategy(self.config, self.algo, state)
        config = dataclasses.replace(self.config, sharing=algo.strategy)
        return Change(Phase(config, algo), state, record)
