"""Behavioural diversity: system neural diversity (SND) of a multi-agent policy.

SND (Bettini, Shankar & Prorok, "System Neural Diversity", 2023) is the mean over pairs of
agents of the distance between their action distributions on the same observations:

    SND = 2 / (N (N − 1)) Σ_{i<j} E_o[ d(π_i(·|o), π_j(·|o)) ].

Observations come from evaluation rollouts: at every step, each agent's observation (and action
mask) is given to every agent's network, with recurrent networks unrolled over the same
observation history, so that agents are compared on identical inputs. The distance by policy
output (``OutputKind``):

- ``gaussian`` (a Gaussian policy): the Wasserstein-2 distance between diagonal Gaussians,
  W₂ = sqrt(‖μ_i − μ_j‖² + ‖σ_i − σ_j‖²), over the action dimensions in use (the closed form
  Bettini et al. use for continuous actions);
- ``deterministic`` (MATD3's actors): W₂ between point masses, ‖a_i − a_j‖₂;
- ``categorical`` (a categorical policy): the total variation distance ½ Σ_a |p_i(a) − p_j(a)|,
  which is the Wasserstein-1 distance under the discrete metric, in [0, 1];
- ``greedy`` (greedy Q-learning agents): the total variation distance between the greedy
  policies' point masses, 1[argmax Q_i ≠ argmax Q_j] (the rate at which agents disagree).

SND is zero for agents that compute the same function (FuPS without agent ids) and is defined
only where agents share an observation layout (``EnvSpec.homogeneous``): on MaBrax each agent
sees its own limbs, so one agent's observation means nothing to another's network.

Shapes: E environments, N agents, A actions, D observation features, H recurrent width.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from prism_marl.envs.base import EnvStep
from prism_marl.fast.loops import reused_kernels
from prism_marl.rl.protocols import OutputActor, OutputKind


def pairwise_distances(output: Any, kind: OutputKind, action_mask: jax.Array) -> jax.Array:
    """d(π_i, π_j) for every pair of agents, from policy outputs on the same observation.

    Args:
        output: logits or Q-values [..., N, A] (``categorical``, ``greedy``); actions
            [..., N, A] (``deterministic``); (mean, log_std), each [..., N, A] (``gaussian``).
        kind: which distance (module docstring).
        action_mask: [..., N, A] actions available (discrete) or dimensions in use
            (continuous); continuous distances count the dimensions both agents use.

    Returns:
        [..., N, N], symmetric with a zero diagonal.
    """
    mask = action_mask.astype(bool)
    if kind in ("categorical", "greedy"):
        if kind == "categorical":
            probs = jax.nn.softmax(jnp.where(mask, output, -jnp.inf), axis=-1)
        else:
            best = jnp.argmax(jnp.where(mask, output, -jnp.inf), axis=-1)
            probs = jax.nn.one_hot(best, output.shape[-1])
        return 0.5 * jnp.sum(jnp.abs(probs[..., :, None, :] - probs[..., None, :, :]), axis=-1)
    shared = mask[..., :, None, :] & mask[..., None, :, :]
    if kind == "gaussian":
        mean, log_std = output
        std = jnp.exp(log_std)
        squared = (mean[..., :, None, :] - mean[..., None, :, :]) ** 2
        squared = squared + (std[..., :, None, :] - std[..., None, :, :]) ** 2
    else:
        squared = (output[..., :, None, :] - output[..., None, :, :]) ** 2
    return jnp.sqrt(jnp.sum(jnp.where(shared, squared, 0.0), axis=-1))


def mean_over_pairs(distances: jax.Array) -> jax.Array:
    """2 / (N (N − 1)) Σ_{i<j} d_ij: [..., N, N] -> [...]; zero for one agent."""
    num_agents = distances.shape[-1]
    if num_agents < 2:
        return jnp.zeros(distances.shape[:-2], distances.dtype)
    return jnp.sum(distances, axis=(-2, -1)) / (num_agents * (num_agents - 1))


def _every_agent_sees(values: jax.Array) -> jax.Array:
    """[E, N, ...] -> [E·N, N, ...]: row (e, r) gives agent r's entry to all N agents."""
    num_agents = values.shape[1]
    tiled = jnp.repeat(values[:, :, None], num_agents, axis=2)  # [E, N_ref, N, ...]
    return tiled.reshape((-1, *tiled.shape[2:]))


def system_neural_diversity(
    actor: OutputActor, variables: Any, key: jax.Array, num_episodes: int
) -> jax.Array:
    """SND of the policy in ``variables`` over ``num_episodes`` greedy evaluation episodes.

    Returns a scalar (NaN where SND is not defined: agents with different observation
    layouts). Steps after an episode's end do not count.
    """
    if not actor.spec.homogeneous:
        return jnp.asarray(jnp.nan)
    env, num_agents = actor.env, actor.spec.num_agents
    env_state, first = jax.vmap(env.reset)(jax.random.split(key, num_episodes))
    live = jnp.ones((num_episodes,), bool)

    def step(carry: _Rollout, step_key: jax.Array) -> tuple[_Rollout, None]:
        last = carry.last
        # The episode's own agents act greedily; the shadow unrolls every agent's network on
        # each agent's observations.
        own, output = actor.policy_output(
            variables, carry.own, last.obs, last.action_mask, carry.starts
        )
        action = _greedy(output, actor.output_kind, last.action_mask)
        masks = _every_agent_sees(last.action_mask)
        shadow, outputs = actor.policy_output(
            variables,
            carry.shadow,
            _every_agent_sees(last.obs),
            masks,
            jnp.repeat(carry.starts, num_agents),
        )
        snd = mean_over_pairs(pairwise_distances(outputs, actor.output_kind, masks))
        weights = jnp.repeat(carry.live, num_agents)
        env_state, out = jax.vmap(env.step)(
            jax.random.split(step_key, num_episodes), carry.env_state, action
        )
        return _Rollout(
            env_state=env_state,
            last=out,
            own=own,
            shadow=shadow,
            starts=out.episode_end,
            live=carry.live & ~out.episode_end,
            total=carry.total + jnp.sum(jnp.where(weights, snd, 0.0)),
            weight=carry.weight + jnp.sum(weights),
        ), None

    init = _Rollout(
        env_state=env_state,
        last=first,
        own=actor.initial_carry(num_episodes),
        shadow=actor.initial_carry(num_episodes * num_agents),
        starts=live,
        live=live,
        total=jnp.zeros(()),
        weight=jnp.zeros(()),
    )
    with reused_kernels(actor.spec.episode_limit):
        final, _ = jax.lax.scan(step, init, jax.random.split(key, actor.spec.episode_limit))
    return final.total / jnp.maximum(final.weight, 1.0)


class _Rollout(NamedTuple):
    env_state: Any
    last: EnvStep
    own: Any
    """The acting agents' recurrent state, [E, ...]."""
    shadow: Any
    """Every agent's recurrent state on each agent's observations, [E·N, ...]."""
    starts: jax.Array
    live: jax.Array
    total: jax.Array
    weight: jax.Array


def _greedy(output: Any, kind: OutputKind, action_mask: jax.Array) -> jax.Array:
    if kind in ("categorical", "greedy"):
        return jnp.argmax(jnp.where(action_mask.astype(bool), output, -jnp.inf), axis=-1)
    if kind == "gaussian":
        return output[0]
    return output


__all__ = [
    "OutputKind",
    "mean_over_pairs",
    "pairwise_distances",
    "system_neural_diversity",
]
