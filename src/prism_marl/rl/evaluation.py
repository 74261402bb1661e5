"""Evaluation episodes of any algorithm's policy, one episode per parallel environment."""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp

from prism_marl.envs.base import EnvSpec, EnvStep, MultiAgentEnv
from prism_marl.sharing.base import reused_kernels


class Actor(Protocol):
    """An algorithm's acting interface (see ``algos.Algorithm``)."""

    @property
    def env(self) -> MultiAgentEnv:
        """The environment."""
        ...

    @property
    def spec(self) -> EnvSpec:
        """The environment's static facts."""
        ...

    def initial_carry(self, num_envs: int) -> Any:
        """Recurrent state for fresh episodes."""
        ...

    def act(
        self,
        variables: Any,
        carry: Any,
        step: EnvStep,
        starts: jax.Array,
        key: jax.Array,
        greedy: bool,
    ) -> tuple[Any, jax.Array]:
        """(carry, actions) for batched steps."""
        ...


STOCHASTIC_OUTPUTS = ("categorical", "gaussian")
"""Policy outputs that are distributions: their test policy samples, as in training."""


def samples_at_test(output_kind: str) -> bool:
    """Whether a policy with this ``output_kind`` (``rl.diversity.OutputKind``) samples at test.

    Used when the run does not choose: a stochastic policy is evaluated as the policy it was
    trained as (docs/decisions/0021-evaluation-mode.md); Q-learners and deterministic actors
    act greedily.
    """
    return output_kind in STOCHASTIC_OUTPUTS


def evaluate_policy(
    actor: Actor, variables: Any, key: jax.Array, num_episodes: int, greedy: bool
) -> tuple[jax.Array, jax.Array]:
    """Team return [episodes] and win flag [episodes] of one full episode per environment.

    Runs ``episode_limit`` steps; rewards after an environment's first episode end are
    ignored (it auto-resets), so each entry is exactly one episode.
    """
    env = actor.env
    env_state, first = jax.vmap(env.reset)(jax.random.split(key, num_episodes))
    live = jnp.ones((num_episodes,), bool)

    def step(carry: Any, step_key: jax.Array) -> tuple[Any, None]:
        (env_state, last, hidden, starts, live), (ret, won) = carry
        act_key, env_key = jax.random.split(step_key)
        hidden, action = actor.act(variables, hidden, last, starts, act_key, greedy)
        env_state, out = jax.vmap(env.step)(
            jax.random.split(env_key, num_episodes), env_state, action
        )
        ret = ret + jnp.where(live, out.team_reward, 0.0)
        won = won | (live & out.won)
        live = live & ~out.episode_end
        return ((env_state, out, hidden, out.episode_end, live), (ret, won)), None

    init = (env_state, first, actor.initial_carry(num_episodes), live, live)
    totals = (jnp.zeros((num_episodes,)), jnp.zeros((num_episodes,), bool))
    with reused_kernels():
        (_, (returns, won)), _ = jax.lax.scan(
            step, (init, totals), jax.random.split(key, actor.spec.episode_limit)
        )
    return returns, won
