"""Training algorithms behind one protocol, and the registry ``--algo`` selects from.

Each algorithm is a frozen object built from (environment, sharing strategy, hyper-parameters,
total steps) with pure ``init`` / ``train_chunk`` / ``evaluate`` functions that the runner jits
and vmaps over seeds; a strategy's preparation step (the ``Prepares`` capability of
``sharing.base``) asks for the optional ``Preparable`` capability too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax

from prism_marl.algos.matd3 import MATD3, MATD3Config
from prism_marl.algos.ppo import PPO, PPOConfig
from prism_marl.algos.qmix import QLearner, QMIXConfig
from prism_marl.envs.base import MultiAgentEnv
from prism_marl.rl.protocols import Actor, OutputActor
from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing.base import SharingStrategy


class Algorithm(Actor, OutputActor, Protocol):
    """What the runner needs from an algorithm (one seed per call; the runner vmaps).

    Acting and raw policy outputs come from ``rl.protocols`` (``env``, ``spec``,
    ``initial_carry``, ``act``, ``output_kind``, ``policy_output``). Its hyper-parameter
    dataclass provides ``steps_per_update`` (environment steps per seed per update), which the
    runner's chunk plan uses. A strategy's preparation step needs the optional ``Preparable``
    capability as well.
    """

    def __hash__(self) -> int:
        """Algorithms are frozen dataclasses: hashable, so their programs can be memoised."""
        ...

    @property
    def strategy(self) -> SharingStrategy:
        """The sharing strategy."""
        ...

    def init(self, key: jax.Array) -> Any:
        """A fresh learner state (a NamedTuple with a ``variables`` field)."""
        ...

    def train_chunk(self, state: Any, num_updates: int) -> tuple[Any, dict[str, jax.Array]]:
        """``num_updates`` updates; metrics include ``train/return`` and ``train/episodes``."""
        ...

    def evaluate(
        self, variables: Any, key: jax.Array, num_episodes: int, greedy: bool | jax.Array = True
    ) -> tuple[jax.Array, jax.Array]:
        """(returns [episodes], won [episodes]) of the policy in ``variables``."""
        ...


@runtime_checkable
class Preparable(Protocol):
    """The capability a strategy's preparation step asks for (SePS: data to cluster agents).

    Host side, on every seed's state at once; ``run.phase`` asks for it by name, so an
    algorithm without it cannot train a strategy that prepares, and says so on one line.
    """

    def agent_transitions(self, states: Any) -> AgentTransitions:
        """Per-agent transitions of the current policies for the strategy's ``prepare``."""
        ...

    def with_variables(self, states: Any, variables: Any) -> Any:
        """The states with new variables and a fresh optimizer."""
        ...


Factory = Callable[[MultiAgentEnv, SharingStrategy, Any, int], Algorithm]


def _ppo(centralised: bool) -> Factory:
    def build(env: MultiAgentEnv, strategy: SharingStrategy, config: Any, total: int) -> PPO:
        return PPO(env, strategy, config, centralised, total)

    return build


def _q_learning(mixer: str) -> Factory:
    def build(env: MultiAgentEnv, strategy: SharingStrategy, config: Any, total: int) -> QLearner:
        return QLearner(env, strategy, config, mixer, total)

    return build


ALGORITHMS: dict[str, tuple[type, Factory]] = {
    "mappo": (PPOConfig, _ppo(True)),
    "ippo": (PPOConfig, _ppo(False)),
    "matd3": (MATD3Config, MATD3),
    "qmix": (QMIXConfig, _q_learning("qmix")),
    "vdn": (QMIXConfig, _q_learning("vdn")),
}
"""Algorithm name -> (hyper-parameter dataclass, factory)."""


def make_algorithm(
    name: str, env: MultiAgentEnv, strategy: SharingStrategy, config: Any, total_steps: int
) -> Algorithm:
    """Build algorithm ``name`` (a key of ``ALGORITHMS``)."""
    return ALGORITHMS[name][1](env, strategy, config, total_steps)
