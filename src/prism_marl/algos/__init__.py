"""Training algorithms behind one protocol, and the registry ``--algo`` selects from.

Each algorithm is a frozen object built from (environment, sharing strategy, hyper-parameters,
total steps) with pure ``init`` / ``train_chunk`` / ``evaluate`` functions that the runner jits
and vmaps over seeds, and two host-side hooks for a strategy's preparation step
(``SharingStrategy.preparation_steps``, ``prepare``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax

from prism_marl.algos.matd3 import MATD3, MATD3Config
from prism_marl.algos.ppo import PPO, PPOConfig
from prism_marl.algos.qmix import QLearner, QMIXConfig
from prism_marl.envs.base import EnvSpec, EnvStep, MultiAgentEnv
from prism_marl.rl.diversity import OutputKind
from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing.base import SharingStrategy


class Algorithm(Protocol):
    """What the runner needs from an algorithm (one seed per call; the runner vmaps).

    Its hyper-parameter dataclass provides ``steps_per_update`` (environment steps per seed
    per update), which the runner's chunk plan uses.
    """

    def __hash__(self) -> int:
        """Algorithms are frozen dataclasses: hashable, so their programs can be memoised."""
        ...

    @property
    def env(self) -> MultiAgentEnv:
        """The environment."""
        ...

    @property
    def strategy(self) -> SharingStrategy:
        """The sharing strategy."""
        ...

    @property
    def spec(self) -> EnvSpec:
        """The environment's static facts."""
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

    def initial_carry(self, num_envs: int) -> Any:
        """The acting policy's recurrent state for ``num_envs`` fresh episodes."""
        ...

    def act(
        self,
        variables: Any,
        carry: Any,
        step: EnvStep,
        starts: jax.Array,
        key: jax.Array,
        greedy: bool | jax.Array,
    ) -> tuple[Any, jax.Array]:
        """(carry, actions [E, N] or [E, N, A]) for batched steps; greedy or exploring.

        ``greedy`` may be traced (a boolean scalar): one compiled evaluation serves both modes.
        """
        ...

    @property
    def output_kind(self) -> OutputKind:
        """What ``policy_output`` returns (``rl.diversity``)."""
        ...

    def policy_output(
        self, variables: Any, carry: Any, obs: jax.Array, action_mask: jax.Array, starts: jax.Array
    ) -> tuple[Any, Any]:
        """(carry, the policy's raw outputs [E, N, ...]) for observations [E, N, D]."""
        ...

    def agent_transitions(self, states: Any) -> AgentTransitions:
        """Host side, all seeds: per-agent transitions for the strategy's ``prepare``."""
        ...

    def with_variables(self, states: Any, variables: Any) -> Any:
        """Host side, all seeds: the states with new variables and a fresh optimizer."""
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
