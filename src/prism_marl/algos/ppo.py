"""MAPPO and IPPO (Yu et al., NeurIPS 2022; de Witt et al., 2020) with any sharing strategy.

Both are PPO with per-agent actors built from the sharing strategy. MAPPO's critic is one plain
network on the global state, V(s); IPPO's critic is per agent, V(o_i), built from the strategy
too. Sections: config, state, construction, rollout, update, evaluation.
Axis glossary: T rollout steps, E envs, N agents, D obs, A actions, S state, H hidden.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from prism_marl.algos.common import (
    EpisodeStats,
    LossParts,
    collect,
    descend,
    merge_networks,
    regularised,
    run_updates,
    seed_transitions,
    select_network,
    start_envs,
)
from prism_marl.envs.base import EnvSpec, EnvStep, MultiAgentEnv
from prism_marl.errors import require
from prism_marl.fast.layout import BatchLayout
from prism_marl.networks.actions import (
    greedy_action,
    log_prob_and_entropy,
    output_spread,
    sample_action,
)
from prism_marl.networks.agents import Policy
from prism_marl.networks.critics import AgentCritic, CentralCritic
from prism_marl.rl.evaluation import evaluate_policy
from prism_marl.rl.ppo import clipped_policy_loss, clipped_value_loss, normalize
from prism_marl.rl.protocols import OutputKind
from prism_marl.rl.returns import generalized_advantages, next_state_values
from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing.base import SharingStrategy, init_aux_state

# ----------------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Hyper-parameters of MAPPO / IPPO."""

    lr: float = 5e-4
    """Adam learning rate (actor and critic)."""
    num_envs: int = 32
    """Parallel training environments per seed."""
    rollout_length: int = 64
    """Environment steps per env between updates."""
    num_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 2
    """Minibatches per pass (split over envs, so sequences stay whole for GRU actors)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE λ."""
    clip: float = 0.2
    """PPO ratio clip ε."""
    value_clip: float | None = 0.2
    """Value clip (None: plain MSE)."""
    entropy_coef: float = 0.01
    """Entropy bonus weight."""
    value_coef: float = 0.5
    """Value loss weight."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Actor widths (recurrent: input layer, GRU)."""
    critic_hidden_sizes: tuple[int, ...] = (64, 64)
    """Critic widths."""
    activation: str = "relu"
    """relu, tanh or gelu."""
    recurrent: bool = False
    """GRU actor (dense -> GRU -> head) instead of an MLP."""
    individual_rewards: bool = False
    """Train on each agent's own reward (IPPO only) instead of the team reward."""
    normalize_advantages: bool = True
    """Standardise advantages per minibatch."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over training."""

    def validate(self, centralised: bool) -> None:
        """Raise ConfigError for settings that cannot work."""
        require(self.lr > 0, "algo.lr", f"must be > 0, got {self.lr}")
        require(self.num_envs >= 1, "algo.num-envs", "must be >= 1")
        require(self.rollout_length >= 1, "algo.rollout-length", "must be >= 1")
        require(self.num_epochs >= 1, "algo.num-epochs", "must be >= 1")
        require(
            self.num_minibatches >= 1 and self.num_envs % self.num_minibatches == 0,
            "algo.num-minibatches",
            f"must divide algo.num-envs ({self.num_envs}), got {self.num_minibatches}",
        )
        require(0 <= self.gamma <= 1, "algo.gamma", "must be in [0, 1]")
        require(0 <= self.gae_lambda <= 1, "algo.gae-lambda", "must be in [0, 1]")
        require(
            self.activation in ("relu", "tanh", "gelu"),
            "algo.activation",
            f"must be one of relu, tanh, gelu; got {self.activation!r}",
        )
        require(
            not self.recurrent or len(self.hidden_sizes) == 2,
            "algo.hidden-sizes",
            "a recurrent actor takes exactly two widths (input layer, GRU)",
        )
        require(
            not (centralised and self.individual_rewards),
            "algo.individual-rewards",
            "needs a per-agent critic (ippo)",
        )

    @property
    def steps_per_update(self) -> int:
        """Environment steps (per seed) consumed by one update."""
        return self.num_envs * self.rollout_length

    def optimizer_steps(self, env_steps: int) -> int:
        """Adam steps taken by the time ``env_steps`` (per seed) are consumed."""
        return env_steps // self.steps_per_update * self.num_epochs * self.num_minibatches


# ------------------------------------------------------------------------------------ state


class TrainState(NamedTuple):
    """Everything an update needs; one per seed."""

    variables: dict[str, Any]  # {"params": {"actor", "critic"}, "buffers": {...}}
    opt_state: Any
    aux_state: Any
    env_state: Any
    last_step: EnvStep
    hidden: jax.Array  # [E, N, H] actor state at the start of the next rollout
    starts: jax.Array  # [E] True where the next step begins an episode
    stats: EpisodeStats
    key: jax.Array
    env_steps: jax.Array
    updates: jax.Array


class Rollout(NamedTuple):
    """One rollout, time-major.

    Inside an update laid out agents first (``fast.layout.BatchLayout``) the fields of
    ``_AGENT_FIELDS`` (and, for IPPO, ``value``) are [N, T, E, ...].
    """

    obs: jax.Array  # [T, E, N, D]
    action_mask: jax.Array  # [T, E, N, A]
    global_state: jax.Array  # [T, E, S]
    starts: jax.Array  # [T, E]
    action: jax.Array  # [T, E, N] or [T, E, N, A]
    log_prob: jax.Array  # [T, E, N]
    value: jax.Array  # [T, E] (MAPPO) or [T, E, N] (IPPO)
    reward: jax.Array  # like value
    terminated: jax.Array  # [T, E]
    episode_end: jax.Array  # [T, E]
    final_value: jax.Array  # like value


# A rollout's fields with an agent axis after [T, E]; agents-first minibatches move it ahead.
_AGENT_FIELDS = frozenset({"obs", "action_mask", "action", "log_prob"})


class CriticInputs(NamedTuple):
    """The critic's inputs of a batch of steps; the one the critic does not read is None."""

    obs: jax.Array | None  # [..., N, D] (IPPO)
    global_state: jax.Array | None  # [..., S] (MAPPO)


# ----------------------------------------------------------------------------- construction


@dataclasses.dataclass(frozen=True)
class PPO:
    """MAPPO (``centralised=True``) or IPPO on one environment with one sharing strategy."""

    env: MultiAgentEnv
    strategy: SharingStrategy
    config: PPOConfig
    centralised: bool
    total_steps: int

    def __post_init__(self) -> None:
        self.config.validate(self.centralised)

    @property
    def spec(self) -> EnvSpec:
        """The environment's static facts."""
        return self.env.spec

    @property
    def policy(self) -> Policy:
        """The actor network."""
        return Policy(
            self.strategy,
            self.spec.num_agents,
            self.spec.num_actions,
            self.spec.action_kind,
            self.config.hidden_sizes,
            self.config.recurrent,
            self.config.activation,
        )

    @property
    def critic(self) -> CentralCritic | AgentCritic:
        """The critic network."""
        if self.centralised:
            return CentralCritic(self.config.critic_hidden_sizes, self.config.activation)
        return AgentCritic(
            self.strategy,
            self.spec.num_agents,
            self.config.critic_hidden_sizes,
            self.config.activation,
        )

    @property
    def agent_ids(self) -> np.ndarray:
        """[N], static numpy ids broadcast along the agent axis.

        Being static, they let strategy layers run agent-major batched products
        (``fast.grouped.agent_matmul``).
        """
        return np.arange(self.spec.num_agents)

    @property
    def layout(self) -> BatchLayout:
        """How the update lays out the rollout for its gradient steps (``fast.layout``)."""
        return BatchLayout.of(self.strategy, self.config.recurrent)

    def optimizer(self) -> optax.GradientTransformation:
        """Adam with global-norm clipping (and linear decay when annealing)."""
        lr: Any = self.config.lr
        if self.config.anneal_lr:
            num_updates = max(1, self.total_steps // self.config.steps_per_update)
            grad_steps = num_updates * self.config.num_epochs * self.config.num_minibatches
            lr = optax.linear_schedule(self.config.lr, 0.0, grad_steps)
        return optax.chain(optax.clip_by_global_norm(self.config.max_grad_norm), optax.adam(lr))

    def values(
        self,
        params_and_buffers: dict[str, Any],
        step_obs: jax.Array | None,
        state: jax.Array | None,
        agent_ids: np.ndarray | None = None,
    ) -> jax.Array:
        """Critic values: [..., ] from the global state (MAPPO) or [..., N] from observations.

        IPPO's observations are [..., N, D] with the default ``agent_ids``; agents-first
        minibatches ([N, ..., D]) pass ``agent_ids[:, None, None]`` and get [N, ...] values.
        """
        critic_vars = select_network(params_and_buffers, "critic")
        if self.centralised:
            value = self.critic.apply(critic_vars, state)
        else:
            ids = self.agent_ids if agent_ids is None else agent_ids
            value = self.critic.apply(critic_vars, step_obs, ids)
        return cast(jax.Array, value)

    def critic_inputs(self, obs: jax.Array, state: jax.Array) -> CriticInputs:
        """What ``values`` reads: the global state (MAPPO) or the observations (IPPO)."""
        return CriticInputs(None, state) if self.centralised else CriticInputs(obs, None)

    def init(self, key: jax.Array) -> TrainState:
        """Fresh networks, optimizer and environments for one seed."""
        spec, cfg = self.spec, self.config
        actor_key, critic_key, env_key, key = jax.random.split(key, 4)
        env_state, first = start_envs(self.env, env_key, cfg.num_envs)
        hidden = jnp.zeros((cfg.num_envs, spec.num_agents, self.policy.hidden_size))
        starts = jnp.ones((cfg.num_envs,), bool)
        actor_vars = self.policy.init(
            actor_key,
            hidden,
            first.obs[None],
            self.agent_ids,
            starts[None],
            first.action_mask[None],
        )
        if self.centralised:
            critic_vars = self.critic.init(critic_key, first.global_state)
        else:
            critic_vars = self.critic.init(critic_key, first.obs, self.agent_ids)
        variables = merge_networks(actor=actor_vars, critic=critic_vars)
        return TrainState(
            variables=variables,
            opt_state=self.optimizer().init(variables["params"]),
            aux_state=init_aux_state(self.strategy),
            env_state=env_state,
            last_step=first,
            hidden=hidden,
            starts=starts,
            stats=EpisodeStats.zeros(cfg.num_envs),
            key=key,
            env_steps=jnp.zeros((), jnp.int32),
            updates=jnp.zeros((), jnp.int32),
        )

    # ---------------------------------------------------------------------------- rollout

    def rollout(self, state: TrainState) -> tuple[TrainState, Rollout, jax.Array]:
        """Collect T steps from E envs; also return the actor state at the rollout's start."""
        cfg, spec = self.config, self.spec
        actor_vars = select_network(state.variables, "actor")

        def act(carry: TrainState, key: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
            last = carry.last_step
            hidden, output = self.policy.apply(
                actor_vars,
                carry.hidden,
                last.obs[None],
                self.agent_ids,
                carry.starts[None],
                last.action_mask[None],
            )
            output = jax.tree_util.tree_map(lambda x: x[0], output)
            action, log_prob = sample_action(output, key, last.action_mask, spec.action_kind)
            return action, (hidden, log_prob)

        def record(
            carry: TrainState,
            action: jax.Array,
            extra: tuple[jax.Array, jax.Array],
            step: EnvStep,
        ) -> tuple[TrainState, tuple[dict[str, jax.Array], CriticInputs]]:
            (hidden, log_prob), last = extra, carry.last_step
            reward = step.reward if cfg.individual_rewards else step.team_reward
            if not self.centralised and not cfg.individual_rewards:
                reward = jnp.broadcast_to(reward[:, None], step.reward.shape)
            # The rollout's fields but its values, which are computed after the scan.
            row = dict(
                obs=last.obs,
                action_mask=last.action_mask,
                global_state=last.global_state,
                starts=carry.starts,
                action=action,
                log_prob=log_prob,
                reward=reward,
                terminated=step.terminated,
                episode_end=step.episode_end,
            )
            final = self.critic_inputs(step.final_obs, step.final_global_state)
            return carry._replace(hidden=hidden, starts=step.episode_end), (row, final)

        start_hidden = state.hidden
        state, (rows, final) = collect(
            self.env, state, cfg.rollout_length, cfg.num_envs, act, record
        )
        # The critic is feed-forward and the rollout's actions do not depend on it, so it runs
        # once on all T steps after the scan, current and final inputs stacked: one product of
        # 2·T·E rows instead of 2·T products of E rows inside the loop (docs/benchmarks.md).
        here = self.critic_inputs(rows["obs"], rows["global_state"])
        stacked = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), here, final)
        value, final_value = jnp.split(self.values(state.variables, *stacked), 2)
        return state, Rollout(**rows, value=value, final_value=final_value), start_hidden

    # ----------------------------------------------------------------------------- update

    def loss(
        self,
        params: dict[str, Any],
        variables: dict[str, Any],
        aux_state: Any,
        batch: Rollout,
        hidden: jax.Array,
        advantages: jax.Array,
        targets: jax.Array,
    ) -> tuple[jax.Array, LossParts]:
        """PPO loss on one minibatch of whole sequences, plus the strategy's auxiliary loss.

        ``batch`` is laid out as ``update`` lays it out (``self.layout``).
        """
        cfg, spec = self.config, self.spec
        full = {**variables, "params": params}
        layout = self.layout
        ids = layout.agent_ids(spec.num_agents)
        _, output = self.policy.apply(
            select_network(full, "actor"), hidden, batch.obs, ids, batch.starts, batch.action_mask
        )
        log_prob, entropy = log_prob_and_entropy(
            output, batch.action, batch.action_mask, spec.action_kind
        )
        values = self.values(full, batch.obs, batch.global_state, ids)
        agent_advantages = layout.broadcast_shared(advantages, log_prob.shape)
        if cfg.normalize_advantages:
            agent_advantages = normalize(agent_advantages)
        policy_loss, clip_fraction = clipped_policy_loss(
            log_prob, batch.log_prob, agent_advantages, cfg.clip
        )
        value_loss = clipped_value_loss(values, batch.value, targets, cfg.value_clip)
        entropy_mean = jnp.mean(entropy)
        rl_loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy_mean
        metrics = {
            "loss/policy": policy_loss,
            "loss/value": value_loss,
            "loss/entropy": entropy_mean,
            "loss/clip_fraction": clip_fraction,
            "policy/output_spread": output_spread(output, batch.action_mask, spec.action_kind),
        }
        # The strategy's coefficient tracks the actor's loss: the critic's value loss (about
        # 100 on MaBrax) would inflate Kaleidoscope's c, whose original sees the actor only.
        actor_loss = policy_loss - cfg.entropy_coef * entropy_mean
        return regularised(self.strategy, full, aux_state, rl_loss, metrics, actor_loss)

    def update(self, state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        """One PPO update: rollout, GAE, epochs of minibatch steps, strategy maintenance."""
        cfg = self.config
        steps_before = state.env_steps
        state, rollout, start_hidden = self.rollout(state)
        last = state.last_step
        last_value = self.values(state.variables, last.obs, last.global_state)
        ends = rollout.episode_end
        terminated = rollout.terminated
        if rollout.value.ndim == 3:
            ends, terminated = ends[..., None], terminated[..., None]
        next_values = next_state_values(rollout.value, last_value, rollout.final_value, ends)
        advantages, targets = generalized_advantages(
            rollout.reward, rollout.value, next_values, terminated, ends, cfg.gamma, cfg.gae_lambda
        )
        optimizer = self.optimizer()
        layout = self.layout
        # IPPO's per-agent critic reads the actor's observations, so its values move with them.
        fields = _AGENT_FIELDS if self.centralised else _AGENT_FIELDS | {"value"}
        rollout, env_axes = layout.arrange(rollout, fields)
        if not self.centralised:  # IPPO's advantages and targets are laid out as its values
            advantages, targets = layout.per_agent(advantages), layout.per_agent(targets)

        def minibatch_step(carry, indices):
            variables, opt_state, aux_state = carry
            take = lambda x, axis=1: jnp.take(x, indices, axis=axis)  # noqa: E731  (env axis)
            batch = Rollout(**{f: take(x, env_axes[f]) for f, x in rollout._asdict().items()})
            params, opt_state, aux_state, metrics = descend(
                self.strategy,
                optimizer,
                self.loss,
                variables["params"],
                opt_state,
                aux_state,
                variables,
                aux_state,
                batch,
                jnp.take(start_hidden, indices, axis=0),
                take(advantages, env_axes["value"]),
                take(targets, env_axes["value"]),
            )
            return ({**variables, "params": params}, opt_state, aux_state), metrics

        def epoch(carry, epoch_key):
            order = jax.random.permutation(epoch_key, cfg.num_envs)
            batches = order.reshape(cfg.num_minibatches, -1)
            return jax.lax.scan(minibatch_step, carry, batches)

        key, epoch_key, maintain_key = jax.random.split(state.key, 3)
        (variables, opt_state, aux_state), metrics = jax.lax.scan(
            epoch,
            (state.variables, state.opt_state, state.aux_state),
            jax.random.split(epoch_key, cfg.num_epochs),
        )
        variables = dict(
            self.strategy.maintain(
                variables, maintain_key, steps_before, state.env_steps, self.total_steps
            )
        )
        metrics = jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=(0, 1)), metrics)
        state = state._replace(
            variables=variables,
            opt_state=opt_state,
            aux_state=aux_state,
            key=key,
            updates=state.updates + 1,
        )
        return state, metrics

    def train_chunk(
        self, state: TrainState, num_updates: int
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        """``num_updates`` updates; returns the mean metrics and the completed-episode stats."""
        return run_updates(self.update, state, num_updates)

    # ------------------------------------------------------------------- preparation hooks

    def agent_transitions(self, states: TrainState) -> AgentTransitions:
        """Host side, all seeds: per-agent pairs from one rollout's worth of each seed's steps."""
        return seed_transitions(self, states, self.config.num_envs, self.config.rollout_length)

    def with_variables(self, states: TrainState, variables: dict[str, Any]) -> TrainState:
        """Host side, all seeds: new variables (a prepared strategy's) and a fresh optimizer."""
        opt_state = jax.vmap(self.optimizer().init)(variables["params"])
        return states._replace(variables=variables, opt_state=opt_state)

    # ------------------------------------------------------------------------- evaluation

    def initial_carry(self, num_envs: int) -> jax.Array:
        """The actor's recurrent state for ``num_envs`` fresh episodes, [E, N, H]."""
        return jnp.zeros((num_envs, self.spec.num_agents, self.policy.hidden_size))

    policy_network: ClassVar[str] = "actor"
    """The policy acts (the critic only trains)."""

    @property
    def output_kind(self) -> OutputKind:
        """What ``policy_output`` returns: logits (categorical) or (mean, log_std)."""
        return "categorical" if self.spec.action_kind == "discrete" else "gaussian"

    def policy_output(
        self,
        variables: dict[str, Any],
        carry: jax.Array,
        obs: jax.Array,
        action_mask: jax.Array,
        starts: jax.Array,
    ) -> tuple[jax.Array, Any]:
        """(carry, logits [E, N, A] or (mean, log_std)) for observations [E, N, D]."""
        carry, output = self.policy.apply(
            select_network(variables, "actor"),
            carry,
            obs[None],
            self.agent_ids,
            starts[None],
            action_mask[None],
        )
        return carry, jax.tree_util.tree_map(lambda x: x[0], output)

    def act(
        self,
        variables: dict[str, Any],
        carry: jax.Array,
        step: EnvStep,
        starts: jax.Array,
        key: jax.Array,
        greedy: bool | jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """One action per env from batched steps [E, ...]: greedy, or sampled as in training."""
        carry, output = self.policy_output(variables, carry, step.obs, step.action_mask, starts)
        sampled, _ = sample_action(output, key, step.action_mask, self.spec.action_kind)
        return carry, jnp.where(greedy, greedy_action(output, self.spec.action_kind), sampled)

    def evaluate(
        self,
        variables: dict[str, Any],
        key: jax.Array,
        num_episodes: int,
        greedy: bool | jax.Array = True,
    ) -> tuple[jax.Array, jax.Array]:
        """Return (and win) of ``num_episodes`` episodes, one per parallel env."""
        return evaluate_policy(self, variables, key, num_episodes, greedy)
