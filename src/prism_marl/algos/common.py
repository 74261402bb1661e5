"""The scaffolding every algorithm shares, so that each algorithm file holds only its own math.

- merged network variables (one tree with a sub-tree per network) and the actor's sub-tree;
- environment start-up and episode statistics;
- the collection scan (act, step every environment, record a row);
- per-agent transitions of every seed's behaviour policy for a strategy's preparation;
- a gradient step with the sharing strategy's auxiliary loss and auxiliary state;
- the learning-start gate around a scan of gradient steps;
- the chunk of updates the runner jits.

Axis glossary: E envs, T steps, K gradient steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import optax

from prism_marl.envs.base import EnvStep, MultiAgentEnv
from prism_marl.fast.loops import reused_kernels
from prism_marl.rl.protocols import Actor
from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing.base import (
    AuxOutput,
    SharingStrategy,
    iter_named_leaves,
    update_aux_state,
)

State = TypeVar("State", bound=Any)


class EpisodeStats(NamedTuple):
    """Running and completed-episode statistics per env."""

    running_return: jax.Array  # [E]
    running_length: jax.Array  # [E]
    completed_return: jax.Array  # [] sum over episodes completed since the last read
    completed_won: jax.Array  # []
    completed_count: jax.Array  # []

    @classmethod
    def zeros(cls, num_envs: int) -> EpisodeStats:
        """No episode started or completed in any of ``num_envs`` environments."""
        running = jnp.zeros((num_envs,))
        return cls(running, running, jnp.zeros(()), jnp.zeros(()), jnp.zeros(()))


def merge_networks(**networks: Any) -> dict[str, Any]:
    """{"params": {name: ...}, "buffers": {name: ...}} from per-network variables."""
    merged: dict[str, Any] = {"params": {}, "buffers": {}}
    for name, variables in networks.items():
        for collection, tree in variables.items():
            merged.setdefault(collection, {})[name] = tree
    return merged


def select_network(variables: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One network's variables out of merged ones: ``{collection: tree[name]}``."""
    return {c: tree[name] for c, tree in variables.items() if name in tree}


def only_network(variables: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One network's variables still nested under its name: ``{collection: {name: ...}}``.

    Strategy hooks (auxiliary losses, Kaleidoscope's resets) find their layers anywhere in the
    tree they get; handing them the actor alone keeps other networks' masked layers (MATD3's
    critic ensemble) out of their reach.
    """
    return {c: {name: tree[name]} for c, tree in variables.items() if name in tree}


def start_envs(env: MultiAgentEnv, key: jax.Array, num_envs: int) -> tuple[Any, EnvStep]:
    """Reset ``num_envs`` environments from one key: (env states, first steps [E, ...])."""
    return jax.vmap(env.reset)(jax.random.split(key, num_envs))


def collect(
    env: MultiAgentEnv,
    state: State,
    length: int,
    num_envs: int,
    act: Callable[[State, jax.Array], tuple[jax.Array, Any]],
    record: Callable[[State, jax.Array, Any, EnvStep], tuple[State, Any]],
) -> tuple[State, Any]:
    """``length`` steps of every environment, time-major rows [T, ...].

    ``state`` is a NamedTuple with ``env_state``, ``last_step`` (the observations to act on),
    ``stats``, ``key`` and ``env_steps``. Each step, ``act(state, key)`` returns the actions
    [E, ...] and anything the row needs (log-probabilities, next recurrent state); all
    environments step; ``record(state, actions, extra, step)`` returns the state with its
    algorithm-specific fields advanced (recurrent state, episode starts) and the step's row,
    while ``state.last_step`` is still the observation acted on. The environments, the last
    step, the episode statistics, the key and ``env_steps`` (+ T·E) advance here.
    """

    def env_step(carry: State, step_key: jax.Array) -> tuple[State, Any]:
        act_key, env_key = jax.random.split(step_key)
        action, extra = act(carry, act_key)
        env_state, step = jax.vmap(env.step)(
            jax.random.split(env_key, num_envs), carry.env_state, action
        )
        carry, row = record(carry, action, extra, step)
        carry = carry._replace(
            env_state=env_state, last_step=step, stats=track_episodes(carry.stats, step)
        )
        return carry, row

    key, collect_key = jax.random.split(state.key)
    with reused_kernels(length):
        state, rows = jax.lax.scan(
            env_step, state._replace(key=key), jax.random.split(collect_key, length)
        )
    return state._replace(env_steps=state.env_steps + length * num_envs), rows


PREPARATION_STREAM = 0x5E95
"""Folded into each seed's key for the preparation's rollout, which leaves the training key."""


def seed_transitions(actor: Actor, states: Any, num_envs: int, length: int) -> AgentTransitions:
    """Host side, all seeds: per-agent transitions of each seed's own behaviour policy.

    ``states`` holds every seed's ``variables`` and ``key`` (leading seed axis). Each seed
    runs ``length`` steps of ``num_envs`` fresh environments, acting as in training
    (``actor.act`` with ``greedy`` False), on a key folded from its own. Every step is a pair,
    episode ends included: the next observation is the one the step reached
    (``EnvStep.final_obs``), as the original SePS stores it. Rewards are each agent's own
    (``EnvStep.reward``), not the team's.

    Returns:
        [S, P, N, ...] per field, P = length·num_envs; discrete actions one-hot.
    """
    spec = actor.spec

    def one_seed(variables: Any, key: jax.Array) -> AgentTransitions:
        reset_key, run_key = jax.random.split(jax.random.fold_in(key, PREPARATION_STREAM))
        env_state, first = start_envs(actor.env, reset_key, num_envs)

        def step(carry: tuple[Any, ...], step_key: jax.Array) -> tuple[tuple[Any, ...], Any]:
            env_state, last, hidden, starts = carry
            act_key, env_key = jax.random.split(step_key)
            hidden, action = actor.act(variables, hidden, last, starts, act_key, False)
            env_state, out = jax.vmap(actor.env.step)(
                jax.random.split(env_key, num_envs), env_state, action
            )
            # Each agent's own reward, as the original's VAE reconstructs it (``ac.py:411``,
            # ``reward[:, agent]``); it equals the team reward where the environment gives
            # every agent the team's (SMAX, MaBrax), and differs on LBF.
            row = AgentTransitions(last.obs, action, out.reward, out.final_obs)
            return (env_state, out, hidden, out.episode_end), row

        init = (env_state, first, actor.initial_carry(num_envs), jnp.ones((num_envs,), bool))
        with reused_kernels(length):
            _, rows = jax.lax.scan(step, init, jax.random.split(run_key, length))
        if spec.action_kind == "discrete":
            rows = rows._replace(actions=jax.nn.one_hot(rows.actions, spec.num_actions))
        # [T, E, N, ...] -> [T·E, N, ...]
        return jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), rows)

    return jax.jit(jax.vmap(one_seed))(states.variables, states.key)


class LossParts(NamedTuple):
    """What a loss reports besides its value: RL loss, auxiliary output, own metrics."""

    rl_loss: jax.Array
    aux: AuxOutput
    metrics: dict[str, jax.Array]
    tracked_loss: jax.Array
    """The loss the strategy's auxiliary state tracks: the actor's own loss (Kaleidoscope's
    adaptive coefficient), which leaves out a separate critic's value loss."""


def regularised(
    strategy: SharingStrategy,
    variables: Any,
    aux_state: Any,
    rl_loss: jax.Array,
    metrics: dict[str, jax.Array],
    tracked_loss: jax.Array | None = None,
) -> tuple[jax.Array, LossParts]:
    """L = L_RL + L_aux(θ), and its parts for ``descend``.

    L_aux is the strategy's weighted auxiliary loss on the layers found in ``variables``
    (method.md §2). ``tracked_loss`` is the part of L_RL that belongs to the network the
    strategy regularises (PPO: policy and entropy terms); None when that is all of L_RL.
    """
    aux = strategy.aux_loss(variables, aux_state)
    tracked = rl_loss if tracked_loss is None else tracked_loss
    return rl_loss + aux.loss, LossParts(rl_loss, aux, metrics, tracked)


class Descent(NamedTuple):
    """The result of one gradient step."""

    params: Any
    opt_state: Any
    aux_state: Any
    metrics: dict[str, jax.Array]


def descend(
    strategy: SharingStrategy,
    optimizer: optax.GradientTransformation,
    loss: Callable[..., tuple[jax.Array, LossParts]],
    params: Any,
    opt_state: Any,
    aux_state: Any,
    *args: Any,
) -> Descent:
    """One optimizer step on ∇_params ``loss(params, *args)``; the auxiliary state advances.

    With ``strategy.decoupled_aux`` the optimizer steps on the RL gradient alone and the
    auxiliary gradient is then subtracted at unit rate: θ ← θ + opt(∇L_RL) − ∇L_aux.

    The strategy's auxiliary state advances with the step's tracked and auxiliary losses. The
    metrics are the loss's own plus ``loss/aux``, the auxiliary metrics, the global norms of
    the RL and auxiliary gradients before any clipping (``grad/rl_norm``, ``grad/aux_norm``),
    the same two norms on the strategy's per-agent parameters alone where it has any
    (``grad/agent_rl_norm``, ``grad/agent_aux_norm``: Prism's mask logits, whose direction
    under Adam follows whichever of the two dominates) and the strategy's weight diagnostics
    after the step.
    """
    grads, parts = jax.grad(loss, has_aux=True)(params, *args)
    # The auxiliary term depends on the parameters only, so its gradient alone is cheap; XLA
    # drops the RL forward pass that this second trace of ``loss`` leaves unused.
    aux_grads = jax.grad(lambda p: loss(p, *args)[1].aux.loss)(params)
    rl_grads = jax.tree_util.tree_map(jnp.subtract, grads, aux_grads)
    if strategy.decoupled_aux:
        # θ ← θ + opt(∇L_RL) − ∇L_aux: the regularisers keep their own scale instead of being
        # weighed against the RL gradient inside Adam's normalisation (decision 0054).
        updates, opt_state = optimizer.update(rl_grads, opt_state, params)
        updates = jax.tree_util.tree_map(jnp.subtract, updates, aux_grads)
    else:
        updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    aux_state = update_aux_state(strategy, aux_state, parts.tracked_loss, parts.aux)
    metrics = {
        **parts.metrics,
        "loss/aux": parts.aux.loss,
        **parts.aux.metrics,
        "grad/rl_norm": optax.tree.norm(rl_grads),
        "grad/aux_norm": optax.tree.norm(aux_grads),
        **strategy.weight_diagnostics(params),
    }
    names = strategy.per_agent_leaves()
    rl_agent = [leaf for name, leaf in iter_named_leaves(rl_grads) if name in names]
    if rl_agent:
        aux_agent = [leaf for name, leaf in iter_named_leaves(aux_grads) if name in names]
        metrics["grad/agent_rl_norm"] = optax.tree.norm(rl_agent)
        metrics["grad/agent_aux_norm"] = optax.tree.norm(aux_agent)
    return Descent(params, opt_state, aux_state, metrics)


def gated_step_count(updates: int, first_ready: int, per_update: int) -> int:
    """Gradient steps taken in ``updates`` updates.

    Update ``first_ready`` (1-based) is the first to train; each training update takes
    ``per_update`` steps.
    """
    return max(0, updates - first_ready + 1) * per_update


def gated_steps(
    step: Callable[[Any, Any], tuple[Any, dict[str, jax.Array]]],
    learner: Any,
    inputs: Any,
    ready: jax.Array,
) -> tuple[Any, dict[str, jax.Array]]:
    """K gradient steps (a scan over ``inputs``), kept only where ``ready`` (learning started).

    ``inputs`` has a leading axis of K: one key or one batch per step. The steps are always
    computed and dropped when not ready: under vmap over seeds a ``lax.cond`` on a per-seed
    flag runs both branches anyway, and one static program serves every update. Returns the
    learner and the steps' mean metrics.
    """
    trained, metrics = jax.lax.scan(step, learner, inputs)
    learner = jax.tree_util.tree_map(lambda new, old: jnp.where(ready, new, old), trained, learner)
    return learner, jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), metrics)


def track_episodes(stats: EpisodeStats, step: EnvStep) -> EpisodeStats:
    """Accumulate the team return; move finished episodes into the completed sums."""
    running = stats.running_return + step.team_reward
    ended = step.episode_end
    return EpisodeStats(
        running_return=jnp.where(ended, 0.0, running),
        running_length=jnp.where(ended, 0.0, stats.running_length + 1),
        completed_return=stats.completed_return + jnp.sum(jnp.where(ended, running, 0.0)),
        completed_won=stats.completed_won + jnp.sum(ended & step.won),
        completed_count=stats.completed_count + jnp.sum(ended),
    )


def run_updates(
    update: Callable[[Any], tuple[Any, dict[str, jax.Array]]], state: Any, num_updates: int
) -> tuple[Any, dict[str, jax.Array]]:
    """``num_updates`` calls of ``update`` (a scan) on a state with an EpisodeStats ``stats``.

    Returns the state and the updates' mean metrics, plus ``train/return``,
    ``train/win_rate`` and ``train/episodes`` over the episodes completed in this chunk.
    """
    stats = state.stats._replace(
        completed_return=jnp.zeros(()), completed_won=jnp.zeros(()), completed_count=jnp.zeros(())
    )
    state, metrics = jax.lax.scan(
        lambda s, _: update(s), state._replace(stats=stats), None, length=num_updates
    )
    metrics = jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), metrics)
    count = state.stats.completed_count
    metrics["train/return"] = state.stats.completed_return / jnp.maximum(count, 1)
    metrics["train/win_rate"] = state.stats.completed_won / jnp.maximum(count, 1)
    metrics["train/episodes"] = count
    return state, metrics
