"""What code outside an algorithm may ask of it, written once: acting, raw policy outputs.

``algos.Algorithm`` is the union the runner drives; evaluation (``rl/evaluation.py``) needs
only an ``Actor`` and SND (``rl/diversity.py``) only an ``OutputActor``, so each states and
type-checks against no more than it uses.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import jax

from prism_marl.envs.base import EnvSpec, EnvStep, MultiAgentEnv

OutputKind = Literal["categorical", "gaussian", "greedy", "deterministic"]
"""What a policy's raw output is: logits, a Gaussian's (mean, log std), Q-values, actions."""


class Episodic(Protocol):
    """An algorithm's policy as far as playing episodes goes: its environment and memory."""

    @property
    def policy_network(self) -> str:
        """The name of the network that acts, under ``params`` and ``buffers``.

        "actor" for policy-gradient and deterministic actors, "q_network" for Q-learners.
        """
        ...

    @property
    def env(self) -> MultiAgentEnv:
        """The environment."""
        ...

    @property
    def spec(self) -> EnvSpec:
        """The environment's static facts."""
        ...

    def initial_carry(self, num_envs: int) -> Any:
        """The policy's recurrent state for ``num_envs`` fresh episodes."""
        ...


class Actor(Episodic, Protocol):
    """A policy that acts (evaluation episodes, rendering)."""

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


class OutputActor(Episodic, Protocol):
    """A policy whose raw outputs can be compared across agents (SND)."""

    @property
    def output_kind(self) -> OutputKind:
        """What ``policy_output`` returns."""
        ...

    def policy_output(
        self, variables: Any, carry: Any, obs: jax.Array, action_mask: jax.Array, starts: jax.Array
    ) -> tuple[Any, Any]:
        """(carry, outputs [E, N, ...]) for observations [E, N, D] and masks [E, N, A]."""
        ...
