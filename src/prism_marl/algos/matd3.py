"""MATD3: multi-agent TD3 with centralised twin critics and any sharing strategy.

References: Fujimoto, van Hoof & Meger, "Addressing Function Approximation Error in Actor-Critic
Methods", ICML 2018 (TD3); Ackermann et al., "Reducing Overestimation Bias in Multi-Agent
Domains Using Double Centralized Critics", 2019 (MATD3); Li, Pan & Zhang, NeurIPS 2024
(Kaleidoscope's masked critic ensemble).

Per-agent deterministic actors μ_i(o_i) are built from the sharing strategy; the critics
Q(s, a_1..a_N) see the global state and the joint (masked) action and are plain networks, like
MAPPO's central critic: two MLPs (twin), or, with ``critic_ensemble``, K threshold masks on one
shared MLP (``sharing.masked.MaskedDense``, Kaleidoscope's layer). Targets take the minimum over
the critics, the actor ascends Q_1 (twin) or the ensemble mean. Transitions go to a fixed-size
circular replay buffer inside the jitted state, one per seed.
Sections: config, networks, state, construction, collection, replay, update, protocol hooks.
Axis glossary: T rollout steps, E envs, N agents, D obs, A action dims (padded), S state,
C buffer rows (one row = one step of every env), B batch, K critics, n n-step window.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from prism_marl.algos.common import (
    EpisodeStats,
    LossParts,
    collect,
    descend,
    gated_step_count,
    gated_steps,
    merge_networks,
    only_network,
    regularised,
    run_updates,
    seed_transitions,
    select_network,
    start_envs,
)
from prism_marl.envs.base import EnvSpec, EnvStep, MultiAgentEnv
from prism_marl.errors import require
from prism_marl.networks.agents import DeterministicActor
from prism_marl.networks.plain import dense_stack
from prism_marl.networks.torso import ACTIVATIONS
from prism_marl.rl.evaluation import evaluate_policy
from prism_marl.rl.protocols import OutputKind
from prism_marl.rl.replay import Replay, empty_replay, replay_add, replay_windows
from prism_marl.rl.targets import n_step_returns, smoothed_target_actions
from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing.base import SharingStrategy, init_aux_state, map_layers
from prism_marl.sharing.masked import MaskedDense, threshold_init

# ----------------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class MATD3Config:
    """Hyper-parameters of MATD3."""

    actor_lr: float = 5e-4
    """Adam learning rate of the actors."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critics."""
    num_envs: int = 16
    """Parallel training environments per seed."""
    rollout_length: int = 8
    """Environment steps per env collected by each update before its gradient steps."""
    gradient_steps: int = 8
    """Critic gradient steps per update (a multiple of policy-delay)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    buffer_size: int = 200_000
    """Replay capacity in transitions (one transition = one step of one env, all agents)."""
    learning_starts: int = 10_000
    """Environment steps per seed of uniform random actions before gradient steps begin."""
    n_step: int = 1
    """Steps of the n-step return (truncated at episode ends)."""
    gamma: float = 0.99
    """Discount."""
    tau: float = 0.005
    """Polyak rate of the target networks, θ' ← (1 − τ) θ' + τ θ."""
    policy_delay: int = 2
    """Critic steps per actor (and target) step."""
    exploration_noise: float = 0.1
    """Std of the Gaussian exploration noise, as a fraction of the action box's half-width."""
    policy_noise: float = 0.2
    """Std of the target policy smoothing noise (fraction of the half-width)."""
    noise_clip: float = 0.5
    """Clip of the target policy smoothing noise (fraction of the half-width)."""
    max_grad_norm: float | None = None
    """Global gradient-norm clip of each optimizer (None: no clip)."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Actor widths."""
    critic_hidden_sizes: tuple[int, ...] = (256, 256)
    """Critic widths."""
    activation: str = "relu"
    """relu, tanh or gelu."""
    critic_ensemble: bool = False
    """Kaleidoscope's critic: ensemble-size threshold masks on one shared critic (min target,
    mean for the actor) instead of two independent critics."""
    ensemble_size: int = 5
    """K, critics in the masked ensemble."""
    ensemble_reset_interval: int = 100_000
    """Environment steps between re-draws of one ensemble mask (round-robin); 0: never."""

    def validate(self) -> None:
        """Raise ConfigError for settings that cannot work."""
        require(self.actor_lr > 0, "algo.actor-lr", f"must be > 0, got {self.actor_lr}")
        require(self.critic_lr > 0, "algo.critic-lr", f"must be > 0, got {self.critic_lr}")
        require(self.num_envs >= 1, "algo.num-envs", "must be >= 1")
        require(self.rollout_length >= 1, "algo.rollout-length", "must be >= 1")
        require(self.n_step >= 1, "algo.n-step", f"must be >= 1, got {self.n_step}")
        require(
            self.policy_delay >= 1 and self.gradient_steps % self.policy_delay == 0,
            "algo.policy-delay",
            f"must be >= 1 and divide algo.gradient-steps ({self.gradient_steps}), "
            f"got {self.policy_delay}",
        )
        require(self.gradient_steps >= 1, "algo.gradient-steps", "must be >= 1")
        require(0 < self.tau <= 1, "algo.tau", f"must be in (0, 1], got {self.tau}")
        require(0 <= self.gamma <= 1, "algo.gamma", "must be in [0, 1]")
        require(self.learning_starts >= 0, "algo.learning-starts", "must be >= 0")
        for name in ("exploration_noise", "policy_noise", "noise_clip"):
            require(getattr(self, name) >= 0, "algo." + name.replace("_", "-"), "must be >= 0")
        require(
            self.max_grad_norm is None or self.max_grad_norm > 0,
            "algo.max-grad-norm",
            "must be > 0 or None",
        )
        require(
            self.activation in ACTIVATIONS,
            "algo.activation",
            f"must be one of relu, tanh, gelu; got {self.activation!r}",
        )
        require(
            not self.critic_ensemble or self.ensemble_size >= 2,
            "algo.ensemble-size",
            "must be >= 2",
        )
        require(self.ensemble_reset_interval >= 0, "algo.ensemble-reset-interval", "must be >= 0")
        least = self.num_envs * max(self.rollout_length, self.n_step)
        require(
            self.buffer_size >= least,
            "algo.buffer-size",
            f"must hold one rollout and one n-step window of every env (>= {least}), "
            f"got {self.buffer_size}",
        )
        require(
            1 <= self.batch_size <= self.samplable_at_start,
            "algo.batch-size",
            f"must be in [1, {self.samplable_at_start}] (transitions the buffer can sample when "
            f"learning starts; raise algo.learning-starts), got {self.batch_size}",
        )

    @property
    def buffer_rows(self) -> int:
        """C, rows of the circular buffer (each row one step of every env)."""
        return self.buffer_size // self.num_envs

    @property
    def samplable_at_start(self) -> int:
        """Transitions with a full n-step window in the buffer at the first gradient step."""
        updates = max(1, math.ceil(self.learning_starts / self.steps_per_update))
        rows = min(updates * self.rollout_length, self.buffer_rows)
        return max(rows - self.n_step + 1, 0) * self.num_envs

    @property
    def steps_per_update(self) -> int:
        """Environment steps (per seed) collected by one update."""
        return self.num_envs * self.rollout_length

    def optimizer_steps(self, env_steps: int) -> int:
        """Critic gradient steps taken by the time ``env_steps`` (per seed) are collected.

        Update u trains once its collection brings the steps to ``learning_starts``; the actor
        takes one step per ``policy_delay`` of these.
        """
        first_ready = -(-self.learning_starts // self.steps_per_update)
        updates = env_steps // self.steps_per_update
        return gated_step_count(updates, first_ready, self.gradient_steps)


# --------------------------------------------------------------------------------- networks


class QNetwork(nn.Module):
    """A plain MLP x [..., F] -> Q [...]."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Q values."""
        return dense_stack(x, self.hidden_sizes, 1, ACTIVATIONS[self.activation])[..., 0]


class TwinCritic(nn.Module):
    """TD3's two independent centralised critics: (s [..., S], a [..., N·A]) -> Q [..., 2]."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, state: jax.Array, joint_action: jax.Array) -> jax.Array:
        """Q_1 and Q_2 stacked on the last axis."""
        x = jnp.concatenate([state, joint_action], axis=-1)
        return jnp.stack(
            [QNetwork(self.hidden_sizes, self.activation, name=f"q{k + 1}")(x) for k in range(2)],
            axis=-1,
        )


class MaskedCriticEnsemble(nn.Module):
    """Kaleidoscope's critic ensemble: K threshold masks on one shared MLP, -> Q [..., K].

    Every layer is a ``MaskedDense`` whose "agents" are the K members (one mask each), fed the
    same input through the static agent-major path, so the members share one kernel per layer
    and differ only by their learnable thresholds.
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    size: int = 5

    @nn.compact
    def __call__(self, state: jax.Array, joint_action: jax.Array) -> jax.Array:
        """Q_1..Q_K stacked on the last axis."""
        x = jnp.concatenate([state, joint_action], axis=-1)
        x = jnp.broadcast_to(x[..., None, :], (*x.shape[:-1], self.size, x.shape[-1]))
        members, ids = tuple(range(self.size)), np.arange(self.size)
        widths = (*self.hidden_sizes, 1)
        for depth, width in enumerate(widths):
            x = MaskedDense(
                features=width,
                num_agents=self.size,
                hidden=depth < len(self.hidden_sizes),
                depth=depth,
                mask_of_agent=members,
                name=f"dense_{depth}",
            )(x, ids)
            if depth < len(self.hidden_sizes):
                x = ACTIVATIONS[self.activation](x)
        return x[..., 0]


def redraw_ensemble_mask(critic_params: Any, key: jax.Array, member: jax.Array) -> Any:
    """Fresh thresholds S_k ~ −(5u + 5) for ensemble member ``member`` in every layer.

    A re-drawn mask prunes almost nothing again, which re-diversifies the ensemble
    (Kaleidoscope's periodic critic reset, one member at a time).
    """

    def redraw(layer: Mapping[str, Any], index: int) -> Mapping[str, Any]:
        thresholds = layer["thresholds"]
        fresh = threshold_init(5.0, 5.0)(jax.random.fold_in(key, index), thresholds.shape[1:])
        return {**layer, "thresholds": thresholds.at[member].set(fresh)}

    return map_layers(critic_params, frozenset({"kernel", "thresholds"}), redraw)


def exploration_actions(
    actions: jax.Array, key: jax.Array, scale: float, low: float, high: float, mask: jax.Array
) -> jax.Array:
    """Exploring actions: a + ε clipped to the box, ε ~ N(0, (scale · (high − low) / 2)²).

    Padded dims (``mask`` False) are 0.
    """
    noise = scale * 0.5 * (high - low) * jax.random.normal(key, actions.shape)
    return jnp.where(mask, jnp.clip(actions + noise, low, high), 0.0)


# ------------------------------------------------------------------------------------ state


class Transition(NamedTuple):
    """One step of every env; leaves [E, ...] (a rollout adds T, the buffer C in front)."""

    obs: jax.Array  # [E, N, D]
    action_mask: jax.Array  # [E, N, A]
    global_state: jax.Array  # [E, S]
    action: jax.Array  # [E, N, A]
    reward: jax.Array  # [E] team reward
    terminated: jax.Array  # [E]
    episode_end: jax.Array  # [E]
    next_obs: jax.Array  # [E, N, D] the real next observation (final one at episode ends)
    next_global_state: jax.Array  # [E, S]


class Learner(NamedTuple):
    """What gradient steps change."""

    variables: dict[str, Any]  # {"params": {"actor", "critic"}, "buffers": {...}}
    targets: dict[str, Any]  # Polyak-averaged copy of ``variables``
    actor_opt_state: Any
    critic_opt_state: Any
    aux_state: Any


class TrainState(NamedTuple):
    """Everything an update needs; one per seed."""

    variables: dict[str, Any]
    targets: dict[str, Any]
    actor_opt_state: Any
    critic_opt_state: Any
    aux_state: Any
    env_state: Any
    last_step: EnvStep
    replay: Replay  # of Transition rows [C, E, ...]: an env's steps are consecutive rows
    stats: EpisodeStats
    key: jax.Array
    env_steps: jax.Array
    updates: jax.Array


# ----------------------------------------------------------------------------- construction


@dataclasses.dataclass(frozen=True)
class MATD3:
    """MATD3 on one continuous-action environment with one sharing strategy."""

    env: MultiAgentEnv
    strategy: SharingStrategy
    config: MATD3Config
    total_steps: int

    def __post_init__(self) -> None:
        require(
            self.spec.action_kind == "continuous",
            "algo",
            f"matd3 needs continuous actions; {self.spec.env_id} has discrete ones",
        )
        self.config.validate()

    @property
    def spec(self) -> EnvSpec:
        """The environment's static facts."""
        return self.env.spec

    @property
    def actor(self) -> DeterministicActor:
        """The per-agent actor network."""
        spec = self.spec
        return DeterministicActor(
            self.strategy,
            spec.num_agents,
            spec.num_actions,
            self.config.hidden_sizes,
            self.config.activation,
            spec.action_low,
            spec.action_high,
        )

    @property
    def critic(self) -> TwinCritic | MaskedCriticEnsemble:
        """The centralised critics (twin or masked ensemble)."""
        cfg = self.config
        if cfg.critic_ensemble:
            return MaskedCriticEnsemble(cfg.critic_hidden_sizes, cfg.activation, cfg.ensemble_size)
        return TwinCritic(cfg.critic_hidden_sizes, cfg.activation)

    @property
    def agent_ids(self) -> np.ndarray:
        """[N] static ids: strategy layers then run agent-major batched products."""
        return np.arange(self.spec.num_agents)

    def actor_optimizer(self) -> optax.GradientTransformation:
        """Adam (with optional global-norm clipping) for the actor parameters."""
        return _adam(self.config.actor_lr, self.config.max_grad_norm)

    def critic_optimizer(self) -> optax.GradientTransformation:
        """Adam (with optional global-norm clipping) for the critic parameters."""
        return _adam(self.config.critic_lr, self.config.max_grad_norm)

    def policy(self, variables: dict[str, Any], obs: jax.Array, mask: jax.Array) -> jax.Array:
        """μ(o): [..., N, D] -> [..., N, A] from merged variables."""
        return cast(
            jax.Array,
            self.actor.apply(select_network(variables, "actor"), obs, self.agent_ids, mask),
        )

    def q_values(
        self, variables: dict[str, Any], state: jax.Array, actions: jax.Array
    ) -> jax.Array:
        """Q_k(s, a_1..a_N): state [..., S], actions [..., N, A] -> [..., K]."""
        joint = actions.reshape(*actions.shape[:-2], -1)
        return cast(jax.Array, self.critic.apply(select_network(variables, "critic"), state, joint))

    def init(self, key: jax.Array) -> TrainState:
        """Fresh networks, targets, optimizers, an empty buffer and environments for one seed."""
        cfg, spec = self.config, self.spec
        actor_key, critic_key, env_key, key = jax.random.split(key, 4)
        env_state, first = start_envs(self.env, env_key, cfg.num_envs)
        actor_vars = self.actor.init(actor_key, first.obs, self.agent_ids, first.action_mask)
        joint = jnp.zeros((cfg.num_envs, spec.num_agents * spec.num_actions))
        critic_vars = self.critic.init(critic_key, first.global_state, joint)
        variables = merge_networks(actor=actor_vars, critic=critic_vars)
        template = Transition(
            obs=first.obs,
            action_mask=first.action_mask,
            global_state=first.global_state,
            action=jnp.zeros(first.action_mask.shape),
            reward=jnp.zeros((cfg.num_envs,)),
            terminated=jnp.zeros((cfg.num_envs,), bool),
            episode_end=jnp.zeros((cfg.num_envs,), bool),
            next_obs=first.obs,
            next_global_state=first.global_state,
        )
        return TrainState(
            variables=variables,
            targets=variables,
            actor_opt_state=self.actor_optimizer().init(variables["params"]["actor"]),
            critic_opt_state=self.critic_optimizer().init(variables["params"]["critic"]),
            aux_state=init_aux_state(self.strategy),
            env_state=env_state,
            last_step=first,
            replay=empty_replay(template, cfg.buffer_rows),
            stats=EpisodeStats.zeros(cfg.num_envs),
            key=key,
            env_steps=jnp.zeros((), jnp.int32),
            updates=jnp.zeros((), jnp.int32),
        )

    # ------------------------------------------------------------------------- collection

    def explore(
        self, variables: dict[str, Any], step: EnvStep, key: jax.Array, uniform: jax.Array
    ) -> jax.Array:
        """Training actions [E, N, A]: μ(o) + clipped Gaussian noise, or uniform in the box.

        Uniform random actions while the buffer warms up (``uniform``, before learning
        starts) cover the box better than a barely initialised actor plus noise (TD3's
        start steps).
        """
        return self.perturb(self.policy(variables, step.obs, step.action_mask), step, key, uniform)

    def perturb(
        self, mean: jax.Array, step: EnvStep, key: jax.Array, uniform: jax.Array
    ) -> jax.Array:
        """``explore`` given the actor's μ(o) [E, N, A] (evaluation computes it anyway)."""
        spec, mask = self.spec, step.action_mask
        noise_key, uniform_key = jax.random.split(key)
        noisy = exploration_actions(
            mean,
            noise_key,
            self.config.exploration_noise,
            spec.action_low,
            spec.action_high,
            mask,
        )
        box = jax.random.uniform(
            uniform_key, mask.shape, minval=spec.action_low, maxval=spec.action_high
        )
        return jnp.where(uniform & mask, box, noisy)

    def collect(
        self, state: TrainState, length: int, uniform: jax.Array
    ) -> tuple[TrainState, Transition]:
        """``length`` exploring steps of every env; transitions [T, E, ...]."""

        def act(carry: TrainState, key: jax.Array) -> tuple[jax.Array, None]:
            return self.explore(carry.variables, carry.last_step, key, uniform), None

        def record(
            carry: TrainState, action: jax.Array, extra: None, step: EnvStep
        ) -> tuple[TrainState, Transition]:
            last = carry.last_step
            transition = Transition(
                obs=last.obs,
                action_mask=last.action_mask,
                global_state=last.global_state,
                action=action,
                reward=step.team_reward,
                terminated=step.terminated,
                episode_end=step.episode_end,
                next_obs=step.final_obs,
                next_global_state=step.final_global_state,
            )
            return carry, transition

        return collect(self.env, state, length, self.config.num_envs, act, record)

    # ----------------------------------------------------------------------------- update

    def td_targets(self, targets: dict[str, Any], window: Transition, key: jax.Array) -> jax.Array:
        """Clipped double-Q n-step targets y [B] for windows with leaves [n, B, ...].

            y = Σ_{j<m} γ^j r_{t+j} + γ^m (1 − term) min_k Q'_k(s', clip(μ'(o') + ε̃))

        (``rl.targets``; m ≤ n stops at the window's episode end).
        """
        cfg, spec = self.config, self.spec
        nstep = n_step_returns(window.reward, window.terminated, window.episode_end, cfg.gamma)

        def at_last(x: jax.Array) -> jax.Array:
            index = nstep.last.reshape(1, -1, *(1,) * (x.ndim - 2))
            return jnp.take_along_axis(x, index, axis=0)[0]

        # An agent's real action dims never change, so the window's first mask serves s'.
        mask = window.action_mask[0]
        next_actions = smoothed_target_actions(
            self.policy(targets, at_last(window.next_obs), mask),
            key,
            cfg.policy_noise,
            cfg.noise_clip,
            spec.action_low,
            spec.action_high,
            mask,
        )
        next_q = self.q_values(targets, at_last(window.next_global_state), next_actions)
        return jax.lax.stop_gradient(nstep.reward_sum + nstep.discount * jnp.min(next_q, -1))

    def critic_loss(
        self,
        critic_params: Any,
        variables: dict[str, Any],
        first: Transition,
        target: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """Σ_k mean_B (Q_k(s_t, a_t) − y)² on the windows' first steps (leaves [B, ...]).

        Returns (loss, mean Q).
        """
        params = {**variables["params"], "critic": critic_params}
        q = self.q_values({**variables, "params": params}, first.global_state, first.action)
        loss = jnp.sum(jnp.mean(jnp.square(q - target[:, None]), axis=0))
        return loss, jnp.mean(q)

    def actor_loss(
        self, actor_params: Any, learner: Learner, batch: Transition
    ) -> tuple[jax.Array, LossParts]:
        """−mean_B Q(s, μ(o)) (Q_1, or the ensemble mean) + the strategy's auxiliary loss.

        Batch leaves [B, ...]. The auxiliary loss sees the actor alone.
        """
        variables = learner.variables
        full = {**variables, "params": {**variables["params"], "actor": actor_params}}
        actions = self.policy(full, batch.obs, batch.action_mask)
        q = self.q_values(variables, batch.global_state, actions)
        q_pi = jnp.mean(q, -1) if self.config.critic_ensemble else q[..., 0]
        rl_loss = -jnp.mean(q_pi)
        actor = only_network(full, "actor")
        return regularised(
            self.strategy, actor, learner.aux_state, rl_loss, {"loss/actor": rl_loss}
        )

    def critic_steps(
        self, learner: Learner, replay: Replay, key: jax.Array
    ) -> tuple[Learner, dict[str, jax.Array]]:
        """A block's policy-delay critic gradient steps, each on its own batch of windows.

        The target networks change only at the block's actor step, so the targets of all its
        batches come from one call of the target actor and critics: per-agent kernels built
        from shared parameters (Prism, Kaleidoscope) are built once per block, not per step.
        """
        cfg = self.config
        steps, batch = cfg.policy_delay, cfg.batch_size
        sample_key, noise_key = jax.random.split(key)
        # One draw of P·B windows is P independent uniform batches of B.
        windows = replay_windows(replay, sample_key, steps * batch, cfg.n_step)
        targets = self.td_targets(learner.targets, windows, noise_key).reshape(steps, batch)
        firsts = jax.tree_util.tree_map(lambda x: x[0].reshape(steps, batch, *x.shape[2:]), windows)

        def step(current: Learner, inputs: tuple[Transition, jax.Array]) -> tuple[Learner, Any]:
            first, target = inputs
            params = current.variables["params"]
            (loss, q_mean), grads = jax.value_and_grad(self.critic_loss, has_aux=True)(
                params["critic"], current.variables, first, target
            )
            updates, opt_state = self.critic_optimizer().update(
                grads, current.critic_opt_state, params["critic"]
            )
            critic = optax.apply_updates(params["critic"], updates)
            variables = {**current.variables, "params": {**params, "critic": critic}}
            return current._replace(variables=variables, critic_opt_state=opt_state), {
                "loss/critic": loss,
                "q/mean": q_mean,
            }

        learner, metrics = jax.lax.scan(step, learner, (firsts, targets))
        return learner, jax.tree_util.tree_map(lambda m: jnp.mean(m, 0), metrics)

    def actor_step(
        self, learner: Learner, replay: Replay, key: jax.Array
    ) -> tuple[Learner, dict[str, jax.Array]]:
        """One actor gradient step, the auxiliary state's update and the Polyak targets."""
        batch = jax.tree_util.tree_map(
            lambda x: x[0], replay_windows(replay, key, self.config.batch_size, 1)
        )
        params = learner.variables["params"]
        actor, opt_state, aux_state, metrics = descend(
            self.strategy,
            self.actor_optimizer(),
            self.actor_loss,
            params["actor"],
            learner.actor_opt_state,
            learner.aux_state,
            learner,
            batch,
        )
        variables = {**learner.variables, "params": {**params, "actor": actor}}
        learner = Learner(
            variables=variables,
            targets=polyak(learner.targets, variables, self.config.tau),
            actor_opt_state=opt_state,
            critic_opt_state=learner.critic_opt_state,
            aux_state=aux_state,
        )
        return learner, metrics

    def update(self, state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        """Collect E·T steps into the buffer, then the gradient steps, then maintenance.

        Gradient steps come in blocks of policy-delay critic steps and one actor step; they
        are skipped before learning starts.
        """
        cfg = self.config
        steps_before = state.env_steps
        state, batch = self.collect(state, cfg.rollout_length, steps_before < cfg.learning_starts)
        replay = replay_add(state.replay, batch)
        key, learn_key, maintain_key = jax.random.split(state.key, 3)

        def block(learner: Learner, block_key: jax.Array) -> tuple[Learner, dict[str, Any]]:
            critic_key, actor_key = jax.random.split(block_key)
            learner, critic_metrics = self.critic_steps(learner, replay, critic_key)
            learner, actor_metrics = self.actor_step(learner, replay, actor_key)
            return learner, {**critic_metrics, **actor_metrics}

        before = Learner(
            state.variables,
            state.targets,
            state.actor_opt_state,
            state.critic_opt_state,
            state.aux_state,
        )
        ready = state.env_steps >= cfg.learning_starts
        blocks = jax.random.split(learn_key, cfg.gradient_steps // cfg.policy_delay)
        learner, metrics = gated_steps(block, before, blocks, ready)
        metrics = jax.tree_util.tree_map(lambda m: jnp.where(ready, m, 0.0), metrics)
        variables = self.maintain(learner.variables, maintain_key, steps_before, state.env_steps)
        state = state._replace(
            variables=variables,
            targets=learner.targets,
            actor_opt_state=learner.actor_opt_state,
            critic_opt_state=learner.critic_opt_state,
            aux_state=learner.aux_state,
            replay=replay,
            key=key,
            updates=state.updates + 1,
        )
        return state, metrics

    def maintain(
        self,
        variables: dict[str, Any],
        key: jax.Array,
        step_before: jax.Array,
        step_after: jax.Array,
    ) -> dict[str, Any]:
        """The strategy's maintenance on the actor, and the ensemble's mask re-draw.

        The strategy (e.g. Kaleidoscope's resets) sees the actor only; the critic ensemble
        re-draws one mask, round-robin, when an interval boundary was crossed.
        """
        strategy_key, ensemble_key = jax.random.split(key)
        actor_only = only_network(variables, "actor")
        actor = self.strategy.maintain(
            actor_only, strategy_key, step_before, step_after, self.total_steps
        )
        params = {**variables["params"], "actor": actor["params"]["actor"]}
        interval = self.config.ensemble_reset_interval
        if self.config.critic_ensemble and interval > 0:
            crossings = step_after // interval
            member = crossings % self.config.ensemble_size
            redrawn = redraw_ensemble_mask(params["critic"], ensemble_key, member)
            due = crossings > step_before // interval
            params["critic"] = jax.tree_util.tree_map(
                lambda new, old: jnp.where(due, new, old), redrawn, params["critic"]
            )
        return {**variables, "params": params}

    def train_chunk(
        self, state: TrainState, num_updates: int
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        """``num_updates`` updates; returns the mean metrics and the completed-episode stats."""
        return run_updates(self.update, state, num_updates)

    # ----------------------------------------------------------------------- protocol hooks

    def agent_transitions(self, states: TrainState) -> AgentTransitions:
        """Host side, all seeds: per-agent pairs from exploring steps of every seed."""
        length = max(self.config.rollout_length, 32)
        return seed_transitions(self, states, self.config.num_envs, length)

    def with_variables(self, states: TrainState, variables: dict[str, Any]) -> TrainState:
        """Host side, all seeds: new variables, re-synced targets and fresh optimizers."""
        params = variables["params"]
        return states._replace(
            variables=variables,
            targets=variables,
            actor_opt_state=jax.vmap(self.actor_optimizer().init)(params["actor"]),
            critic_opt_state=jax.vmap(self.critic_optimizer().init)(params["critic"]),
        )

    def initial_carry(self, num_envs: int) -> jax.Array:
        """Feed-forward actors carry nothing: a dummy [E]."""
        return jnp.zeros((num_envs,))

    def act(
        self,
        variables: dict[str, Any],
        carry: jax.Array,
        step: EnvStep,
        starts: jax.Array,
        key: jax.Array,
        greedy: bool | jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """Actions [E, N, A] for batched steps: μ(o), or μ(o) plus exploration noise."""
        del starts
        mean = self.policy(variables, step.obs, step.action_mask)
        return carry, jnp.where(greedy, mean, self.perturb(mean, step, key, jnp.asarray(False)))

    policy_network: ClassVar[str] = "actor"
    """The deterministic actor μ acts (the critics only train)."""
    output_kind: ClassVar[OutputKind] = "deterministic"
    """``policy_output`` returns the actions μ(o)."""

    def policy_output(
        self,
        variables: dict[str, Any],
        carry: jax.Array,
        obs: jax.Array,
        action_mask: jax.Array,
        starts: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """(carry, μ(o) [E, N, A]) for observations [E, N, D]."""
        del starts
        return carry, self.policy(variables, obs, action_mask)

    def evaluate(
        self,
        variables: dict[str, Any],
        key: jax.Array,
        num_episodes: int,
        greedy: bool | jax.Array = True,
    ) -> tuple[jax.Array, jax.Array]:
        """Return (and win) of ``num_episodes`` episodes, one per parallel env."""
        return evaluate_policy(self, variables, key, num_episodes, greedy)


# ---------------------------------------------------------------------------------- helpers


def polyak(targets: dict[str, Any], variables: dict[str, Any], tau: float) -> dict[str, Any]:
    """θ' ← (1 − τ) θ' + τ θ on params; buffers follow the online network's."""
    params = jax.tree_util.tree_map(
        lambda t, o: (1.0 - tau) * t + tau * o, targets["params"], variables["params"]
    )
    return {**variables, "params": params}


def _adam(lr: float, max_grad_norm: float | None) -> optax.GradientTransformation:
    if max_grad_norm is None:
        return optax.adam(lr)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr))
