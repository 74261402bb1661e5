"""Evaluation episodes of any algorithm's policy, one episode per parallel environment."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from prism_marl.envs.base import EnvStep
from prism_marl.fast.loops import reused_kernels
from prism_marl.rl.protocols import Actor

STOCHASTIC_OUTPUTS = ("categorical", "gaussian")
"""Policy outputs that are distributions: their test policy samples, as in training."""


def samples_at_test(output_kind: str) -> bool:
    """Whether a policy with this ``output_kind`` (``rl.protocols.OutputKind``) samples at test.

    Used when the run does not choose: a stochastic policy is evaluated as the policy it was
    trained as (docs/decisions/0021-evaluation-mode.md); Q-learners and deterministic actors
    act greedily.
    """
    return output_kind in STOCHASTIC_OUTPUTS


class _EpisodeCarry(NamedTuple):
    """The evaluation loop's carry: environments, policy memory and the running totals."""

    env_state: Any
    last: EnvStep
    """The latest step of every environment (observations the policy acts on)."""
    hidden: Any
    """The policy's recurrent state."""
    starts: jax.Array
    """[episodes] whether ``last`` begins an episode (recurrent policies reset there)."""
    live: jax.Array
    """[episodes] still in the first episode: later rewards are not counted."""
    returns: jax.Array
    """[episodes] team return so far."""
    won: jax.Array
    """[episodes] whether the first episode was won."""


def evaluate_policy(
    actor: Actor, variables: Any, key: jax.Array, num_episodes: int, greedy: bool | jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Team return [episodes] and win flag [episodes] of one full episode per environment.

    Runs ``episode_limit`` steps; rewards after an environment's first episode end are
    ignored (it auto-resets), so each entry is exactly one episode.
    """
    env = actor.env
    env_state, first = jax.vmap(env.reset)(jax.random.split(key, num_episodes))
    live = jnp.ones((num_episodes,), bool)

    def step(carry: _EpisodeCarry, step_key: jax.Array) -> tuple[_EpisodeCarry, None]:
        act_key, env_key = jax.random.split(step_key)
        hidden, action = actor.act(
            variables, carry.hidden, carry.last, carry.starts, act_key, greedy
        )
        env_state, out = jax.vmap(env.step)(
            jax.random.split(env_key, num_episodes), carry.env_state, action
        )
        return _EpisodeCarry(
            env_state=env_state,
            last=out,
            hidden=hidden,
            starts=out.episode_end,
            live=carry.live & ~out.episode_end,
            returns=carry.returns + jnp.where(carry.live, out.team_reward, 0.0),
            won=carry.won | (carry.live & out.won),
        ), None

    init = _EpisodeCarry(
        env_state=env_state,
        last=first,
        hidden=actor.initial_carry(num_episodes),
        starts=live,
        live=live,
        returns=jnp.zeros((num_episodes,)),
        won=jnp.zeros((num_episodes,), bool),
    )
    with reused_kernels(actor.spec.episode_limit):
        final, _ = jax.lax.scan(step, init, jax.random.split(key, actor.spec.episode_limit))
    return final.returns, final.won
