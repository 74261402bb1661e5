"""QMIX (Rashid et al., ICML 2018) and VDN (Sunehag et al., AAMAS 2018) with any sharing strategy.

Recurrent agent Q-networks are built from the sharing strategy (dense -> GRU -> dense to one Q
value per action); a monotonic hypernetwork mixer on the global state (QMIX) or a sum (VDN)
combines the chosen actions' values into Q_tot. Parallel environments stream fixed-length
sequences (``segment_length`` steps, episodes may start and end inside) into a replay of
sequences, each stored with the agents' recurrent state at its first step; targets are double-Q
TD(λ) over each sequence from a hard-copied target network. Each step's next-step values come
from the same unroll (one extra GRU step only at truncations and the sequence's end), and an
update's gradient steps get their target values from one target unroll (decision 0022).
Sections: config, networks, state, acting, update, protocol hooks.
Axis glossary: T sequence steps, E envs, B sampled sequences, N agents, D obs, A actions,
S global state, H hidden, C buffer capacity (sequences), K next observations kept per sequence.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

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
    regularised,
    run_updates,
    seed_transitions,
    select_network,
    start_envs,
)
from prism_marl.envs.base import EnvSpec, EnvStep, MultiAgentEnv
from prism_marl.errors import require
from prism_marl.networks.agents import AgentQNetwork
from prism_marl.networks.plain import dense_stack
from prism_marl.rl.evaluation import evaluate_policy
from prism_marl.rl.protocols import OutputKind
from prism_marl.rl.replay import Replay, empty_replay, replay_add, replay_sample
from prism_marl.rl.returns import td_lambda_returns
from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing.base import SharingStrategy, init_aux_state

# ----------------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class QMIXConfig:
    """Hyper-parameters of QMIX / VDN."""

    lr: float = 5e-4
    """Adam learning rate (agent networks and mixer)."""
    num_envs: int = 8
    """Parallel environments per seed; each adds one sequence to the replay per update."""
    segment_length: int = 50
    """Steps per stored sequence (the benchmark's LBF episode length by default)."""
    buffer_size: int = 5000
    """Replay capacity in sequences."""
    batch_size: int = 32
    """Sequences per gradient step."""
    learning_starts: int = 32
    """Sequences in the replay before gradient steps start (at least batch-size)."""
    gradient_steps: int = 4
    """Gradient steps per update (per num_envs new sequences; EPyMARL's ratio, one step per
    sequence, is gradient_steps = num_envs: the qmix-lbf preset)."""
    epsilon_start: float = 1.0
    """Initial ε of ε-greedy exploration."""
    epsilon_end: float = 0.05
    """Final ε."""
    epsilon_steps: int = 50_000
    """Environment steps (per seed) over which ε decays linearly."""
    gamma: float = 0.99
    """Discount."""
    td_lambda: float = 0.6
    """λ of the TD(λ) targets (0: one-step targets)."""
    double_q: bool = True
    """Select next actions with the online network, evaluate them with the target network."""
    target_update_interval: int = 200
    """Gradient steps between hard copies of the online networks into the targets (made at
    the end of the update in which the count reaches a multiple)."""
    hidden_size: int = 64
    """Width of the agent network's dense layer and GRU."""
    mixer_embed: int = 32
    """QMIX mixing embedding size."""
    hypernet_hidden: int = 64
    """Hidden width of QMIX's hypernetworks."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""
    standardise_rewards: bool = False
    """Divide rewards by a running standard deviation and remove its mean (EPyMARL's switch)."""

    def validate(self) -> None:
        """Raise ConfigError for settings that cannot work."""
        require(self.lr > 0, "algo.lr", f"must be > 0, got {self.lr}")
        require(self.num_envs >= 1, "algo.num-envs", "must be >= 1")
        require(self.segment_length >= 1, "algo.segment-length", "must be >= 1")
        require(self.batch_size >= 1, "algo.batch-size", "must be >= 1")
        require(
            self.buffer_size >= max(self.batch_size, self.num_envs),
            "algo.buffer-size",
            f"must hold at least algo.batch-size ({self.batch_size}) and algo.num-envs "
            f"({self.num_envs}) sequences, got {self.buffer_size}",
        )
        require(
            self.batch_size <= self.learning_starts <= self.buffer_size,
            "algo.learning-starts",
            f"must be between algo.batch-size ({self.batch_size}) and algo.buffer-size "
            f"({self.buffer_size}): sampling starts only when a batch fits, got "
            f"{self.learning_starts}",
        )
        require(self.gradient_steps >= 1, "algo.gradient-steps", "must be >= 1")
        require(0 <= self.td_lambda <= 1, "algo.td-lambda", "must be in [0, 1]")
        require(0 <= self.gamma <= 1, "algo.gamma", "must be in [0, 1]")
        require(
            0 <= self.epsilon_end <= self.epsilon_start <= 1,
            "algo.epsilon-start",
            "need 0 <= algo.epsilon-end <= algo.epsilon-start <= 1",
        )
        require(self.epsilon_steps >= 1, "algo.epsilon-steps", "must be >= 1")
        require(self.target_update_interval >= 1, "algo.target-update-interval", "must be >= 1")

    @property
    def steps_per_update(self) -> int:
        """Environment steps (per seed) collected by one update."""
        return self.num_envs * self.segment_length

    def optimizer_steps(self, env_steps: int) -> int:
        """Gradient steps taken by the time ``env_steps`` (per seed) are collected.

        Update u adds u·num_envs sequences and trains once the replay holds
        ``learning_starts``.
        """
        first_ready = -(-self.learning_starts // self.num_envs)
        updates = env_steps // self.steps_per_update
        return gated_step_count(updates, first_ready, self.gradient_steps)


def epsilon(config: QMIXConfig, env_steps: jax.Array) -> jax.Array:
    """ε_t = ε_0 + (ε_1 − ε_0) · min(1, t / t_decay), linear decay over environment steps."""
    fraction = jnp.minimum(env_steps / config.epsilon_steps, 1.0)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


def epsilon_greedy(
    key: jax.Array, q_values: jax.Array, action_mask: jax.Array, eps: jax.Array
) -> jax.Array:
    """Masked ε-greedy: q_values, action_mask [..., A] -> actions [...].

    The argmax over valid actions, or with probability ε a uniformly drawn valid action.
    """
    explore_key, pick_key = jax.random.split(key)
    greedy = jnp.argmax(jnp.where(action_mask, q_values, -jnp.inf), axis=-1)
    uniform = jax.random.categorical(pick_key, jnp.where(action_mask, 0.0, -jnp.inf))
    explore = jax.random.uniform(explore_key, greedy.shape) < eps
    return jnp.where(explore, uniform, greedy)


# --------------------------------------------------------------------------------- networks


class QMixer(nn.Module):
    """Monotonic mixing network (Rashid et al., 2018, §4.2).

        Q_tot = elu(q W₁(s) + b₁(s)) W₂(s) + V(s),  W₁ = |hyper₁(s)| [N, K], W₂ = |hyper₂(s)| [K]

    so ∂Q_tot/∂q_i ≥ 0 for every agent. q [..., N], s [..., S] -> Q_tot [...].
    """

    num_agents: int
    embed: int = 32
    hypernet_hidden: int = 64

    @nn.compact
    def __call__(self, q: jax.Array, state: jax.Array) -> jax.Array:
        """Q_tot from the agents' chosen-action values and the global state."""

        def hyper(size: int, name: str, scale: float = 1.0) -> jax.Array:
            init = nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")
            hidden = (self.hypernet_hidden,)
            return dense_stack(state, hidden, size, nn.relu, output_init=init, prefix=name)

        w1 = jnp.abs(hyper(self.num_agents * self.embed, "hyper_w1"))
        w1 = w1.reshape(*state.shape[:-1], self.num_agents, self.embed)
        b1 = dense_stack(state, (), self.embed, nn.relu, prefix="hyper_b1")
        mixed = nn.elu(jnp.einsum("...n,...nk->...k", q, w1) + b1)
        # Unnormalised states (LBF's raw coordinates) would start Q_tot far from the returns,
        # an offset that bootstrapping only removes at rate 1 − γ per target period.
        w2 = jnp.abs(hyper(self.embed, "hyper_w2", scale=1e-4))
        value = hyper(1, "value", scale=1e-4)[..., 0]
        return jnp.sum(mixed * w2, axis=-1) + value


class VDNMixer(nn.Module):
    """Value decomposition: Q_tot = Σ_i q_i (no parameters). q [..., N] -> [...]."""

    @nn.compact
    def __call__(self, q: jax.Array, state: jax.Array) -> jax.Array:
        """Sum over agents (the state is unused)."""
        del state
        return jnp.sum(q, axis=-1)


# ------------------------------------------------------------------------------------ state


class SequenceEnds(NamedTuple):
    """Real next observations where they are not the next stored step's: K steps per sequence.

    A step's next observation is the following stored step's except at the sequence's last
    step and where an episode was truncated (``QLearner.boundary_slots``), so a sequence keeps
    K of them, not T: half the replay's memory (QMIX on SMAX, 3 seeds: 4.6 GB -> 2.4 GB).
    The collection's rows hold every step's (K = T, ``step`` = 0..T-1).
    """

    step: jax.Array  # [C, K] int32 time index; unused slots repeat the last step
    obs: jax.Array  # [C, K, N, D] the step's real next observation (final at episode ends)
    action_mask: jax.Array  # [C, K, N, A]
    state: jax.Array  # [C, K, S]


class Sequences(NamedTuple):
    """Stored sequences, [C, T, ...] (or [C, ...] for the first-step hidden state)."""

    obs: jax.Array  # [C, T, N, D]
    action_mask: jax.Array  # [C, T, N, A]
    state: jax.Array  # [C, T, S]
    starts: jax.Array  # [C, T] episode starts at this step (hidden reset)
    action: jax.Array  # [C, T, N]
    reward: jax.Array  # [C, T]
    terminated: jax.Array  # [C, T]
    episode_end: jax.Array  # [C, T]
    ends: SequenceEnds  # next observations at the K steps where they are not obs[t + 1]
    hidden: jax.Array  # [C, N, H] agents' recurrent state before the first step


class RewardStats(NamedTuple):
    """Running mean and variance of rewards (parallel Welford update)."""

    mean: jax.Array
    var: jax.Array
    weight: jax.Array  # rewards seen


class Learner(NamedTuple):
    """What a gradient step changes."""

    variables: dict[str, Any]  # {"params": {"q_network", "mixer"}, "buffers": {...}}
    target_params: dict[str, Any]
    opt_state: Any
    aux_state: Any
    grad_steps: jax.Array


class StepInputs(NamedTuple):
    """One gradient step's share of an update's draw (``QLearner.update``)."""

    batch: Sequences  # [B, T, ...]
    rewards: jax.Array  # [B, T], standardised where configured
    target_next_q: jax.Array  # [T, B, N, A], ``QLearner.target_values``


class QMIXState(NamedTuple):
    """Everything an update needs; one per seed."""

    variables: dict[str, Any]  # {"params": {"q_network", "mixer"}, "buffers": {...}}
    target_params: dict[str, Any]
    opt_state: Any
    aux_state: Any
    env_state: Any
    last_step: EnvStep
    hidden: jax.Array  # [E, N, H]
    starts: jax.Array  # [E]
    replay: Replay  # of Sequences
    reward_stats: RewardStats
    stats: EpisodeStats
    key: jax.Array
    env_steps: jax.Array
    updates: jax.Array
    grad_steps: jax.Array


# ------------------------------------------------------------------------- construction


@dataclasses.dataclass(frozen=True)
class QLearner:
    """QMIX (``mixer="qmix"``) or VDN (``mixer="vdn"``) with one sharing strategy."""

    env: MultiAgentEnv
    strategy: SharingStrategy
    config: QMIXConfig
    mixer_kind: str
    total_steps: int

    def __post_init__(self) -> None:
        self.config.validate()
        require(
            self.spec.action_kind == "discrete",
            "algo",
            f"{self.mixer_kind} needs discrete actions; {self.spec.env_id} is continuous "
            "(use matd3, mappo or ippo)",
        )

    @property
    def spec(self) -> EnvSpec:
        """The environment's static facts."""
        return self.env.spec

    @property
    def agent_ids(self) -> np.ndarray:
        """[N], static: broadcast along the agent axis (agent-major products)."""
        return np.arange(self.spec.num_agents)

    @property
    def network(self) -> AgentQNetwork:
        """The agents' Q-network."""
        return AgentQNetwork(
            self.strategy, self.spec.num_agents, self.spec.num_actions, self.config.hidden_size
        )

    @property
    def mixer(self) -> nn.Module:
        """QMIX's hypernetwork mixer or VDN's sum."""
        if self.mixer_kind == "vdn":
            return VDNMixer()
        return QMixer(self.spec.num_agents, self.config.mixer_embed, self.config.hypernet_hidden)

    def _q_values(
        self,
        variables: Any,
        hidden: jax.Array,
        obs: jax.Array,
        agent_ids: np.ndarray,
        resets: jax.Array,
        action_mask: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """The agent network's (hidden states, Q-values), time-major."""
        hiddens, q_values = self.network.apply(
            variables, hidden, obs, agent_ids, resets, action_mask
        )
        return jnp.asarray(hiddens), jnp.asarray(q_values)

    def _mix(self, variables: Any, q: jax.Array, state: jax.Array) -> jax.Array:
        """Q_tot from chosen-action values [..., N] and global states [..., S]."""
        return jnp.asarray(self.mixer.apply(variables, q, state))

    def optimizer(self) -> optax.GradientTransformation:
        """Adam with global-norm clipping."""
        cfg = self.config
        return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr))

    def initial_carry(self, num_envs: int) -> jax.Array:
        """Zero recurrent state for fresh episodes, [E, N, H]."""
        return jnp.zeros((num_envs, self.spec.num_agents, self.config.hidden_size))

    def init(self, key: jax.Array) -> QMIXState:
        """Fresh networks, targets, optimizer, empty replay and environments for one seed."""
        spec, cfg = self.spec, self.config
        net_key, mix_key, env_key, key = jax.random.split(key, 4)
        env_state, first = start_envs(self.env, env_key, cfg.num_envs)
        hidden = self.initial_carry(cfg.num_envs)
        starts = jnp.ones((cfg.num_envs,), bool)
        net_vars = self.network.init(
            net_key, hidden, first.obs[None], self.agent_ids, starts[None], first.action_mask[None]
        )
        mixer_vars = self.mixer.init(
            mix_key, jnp.zeros((cfg.num_envs, spec.num_agents)), first.global_state
        )
        variables = merge_networks(q_network=net_vars, mixer=mixer_vars)
        variables["params"].setdefault("mixer", {})
        return QMIXState(
            variables=variables,
            target_params=variables["params"],
            opt_state=self.optimizer().init(variables["params"]),
            aux_state=init_aux_state(self.strategy),
            env_state=env_state,
            last_step=first,
            hidden=hidden,
            starts=starts,
            replay=self._empty_replay(),
            reward_stats=RewardStats(jnp.zeros(()), jnp.ones(()), jnp.full((), 1e-4)),
            stats=EpisodeStats.zeros(cfg.num_envs),
            key=key,
            env_steps=jnp.zeros((), jnp.int32),
            updates=jnp.zeros((), jnp.int32),
            grad_steps=jnp.zeros((), jnp.int32),
        )

    def _empty_replay(self) -> Replay:
        spec, cfg = self.spec, self.config
        t, n, k = cfg.segment_length, spec.num_agents, self.boundary_slots
        f32 = jnp.float32
        sequence = Sequences(
            obs=jnp.zeros((t, n, spec.obs_size), f32),
            action_mask=jnp.zeros((t, n, spec.num_actions), bool),
            state=jnp.zeros((t, spec.state_size), f32),
            starts=jnp.zeros((t,), bool),
            action=jnp.zeros((t, n), jnp.int32),
            reward=jnp.zeros((t,), f32),
            terminated=jnp.zeros((t,), bool),
            episode_end=jnp.zeros((t,), bool),
            ends=SequenceEnds(
                step=jnp.full((k,), t - 1, jnp.int32),
                obs=jnp.zeros((k, n, spec.obs_size), f32),
                action_mask=jnp.zeros((k, n, spec.num_actions), bool),
                state=jnp.zeros((k, spec.state_size), f32),
            ),
            hidden=jnp.zeros((n, cfg.hidden_size), f32),
        )
        return empty_replay(sequence, cfg.buffer_size)

    # ----------------------------------------------------------------------------- acting

    def act(
        self,
        variables: dict[str, Any],
        carry: jax.Array,
        step: EnvStep,
        starts: jax.Array,
        key: jax.Array,
        greedy: bool | jax.Array,
        eps: jax.Array | float | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """Actions [E, N] for batched steps: greedy, or ε-greedy (ε_end unless ``eps``)."""
        hidden, q_values = self.policy_output(variables, carry, step.obs, step.action_mask, starts)
        eps = jnp.where(greedy, 0.0, self.config.epsilon_end if eps is None else eps)
        action = epsilon_greedy(key, q_values, step.action_mask, eps)
        return hidden, action

    policy_network: ClassVar[str] = "q_network"
    """The agents' Q-network acts (the mixer only trains)."""
    output_kind: ClassVar[OutputKind] = "greedy"
    """``policy_output`` returns Q-values; the evaluated policy is their argmax."""

    def policy_output(
        self,
        variables: dict[str, Any],
        carry: jax.Array,
        obs: jax.Array,
        action_mask: jax.Array,
        starts: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """(hidden [E, N, H], Q-values [E, N, A]) for observations [E, N, D]."""
        hiddens, q_values = self._q_values(
            select_network(variables, self.policy_network),
            carry,
            obs[None],
            self.agent_ids,
            starts[None],
            action_mask[None],
        )
        return hiddens[0], q_values[0]

    def collect(self, state: QMIXState) -> tuple[QMIXState, Sequences]:
        """One sequence per environment as stored: ``collect_steps``' with K ends kept."""
        state, sequences = self.collect_steps(state)
        return state, self.keep_ends(sequences)

    def collect_steps(self, state: QMIXState) -> tuple[QMIXState, Sequences]:
        """One sequence of ``segment_length`` ε-greedy steps from each environment.

        Its ``ends`` hold every step's real next observation (K = T); ``keep_ends`` keeps
        the ones the update reads.
        """
        cfg = self.config
        eps = epsilon(cfg, state.env_steps)

        def act(carry: QMIXState, key: jax.Array) -> tuple[jax.Array, jax.Array]:
            hidden, action = self.act(
                carry.variables, carry.hidden, carry.last_step, carry.starts, key, False, eps
            )
            return action, hidden

        def record(
            carry: QMIXState, action: jax.Array, hidden: jax.Array, step: EnvStep
        ) -> tuple[QMIXState, Sequences]:
            last = carry.last_step
            row = Sequences(
                obs=last.obs,
                action_mask=last.action_mask,
                state=last.global_state,
                starts=carry.starts,
                action=action.astype(jnp.int32),
                reward=step.team_reward,
                terminated=step.terminated,
                episode_end=step.episode_end,
                ends=SequenceEnds(
                    step=jnp.zeros_like(step.terminated, jnp.int32),  # set after the scan
                    obs=step.final_obs,
                    action_mask=_final_mask(step),
                    state=step.final_global_state,
                ),
                hidden=carry.hidden,
            )
            return carry._replace(hidden=hidden, starts=step.episode_end), row

        state, rows = collect(self.env, state, cfg.segment_length, cfg.num_envs, act, record)
        # [T, E, ...] -> [E, T, ...]; the stored hidden is the one before the first step.
        sequences = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), rows)
        every_step = jnp.broadcast_to(jnp.arange(cfg.segment_length), sequences.reward.shape)
        ends = sequences.ends._replace(step=every_step.astype(jnp.int32))
        return state, sequences._replace(hidden=rows.hidden[0], ends=ends)

    def keep_ends(self, sequences: Sequences) -> Sequences:
        """Keep the ``boundary_slots`` ends the update reads: truncations, then the last step.

        ``sequences`` as ``collect_steps`` returns them ([E, T, ...], every step's end);
        truncations at the last step, or beyond the slots (impossible when episodes last
        ``episode_limit`` steps), are covered by the last slot or not kept.
        """
        t = sequences.reward.shape[1]
        truncated = (sequences.episode_end & ~sequences.terminated)[:, :-1]  # [E, T - 1]
        found = jax.vmap(
            lambda row: jnp.nonzero(row, size=self.boundary_slots - 1, fill_value=t - 1)[0]
        )(truncated)
        slots = jnp.concatenate([found, jnp.full((found.shape[0], 1), t - 1, found.dtype)], 1)
        keep = lambda x: jnp.take_along_axis(  # noqa: E731  [E, T, ...] -> [E, K, ...]
            x, slots.reshape(*slots.shape, *(1,) * (x.ndim - 2)), axis=1
        )
        return sequences._replace(ends=jax.tree_util.tree_map(keep, sequences.ends))

    # ----------------------------------------------------------------------------- update

    def _unroll(self, variables: dict[str, Any], batch: Sequences) -> tuple[jax.Array, jax.Array]:
        """(hidden after each step [T, B, N, H], Q [T, B, N, A]) over stored sequences."""
        return self._q_values(
            select_network(variables, self.policy_network),
            batch.hidden,
            _time_major(batch.obs),
            self.agent_ids,
            _time_major(batch.starts),
            _time_major(batch.action_mask),
        )

    @property
    def boundary_slots(self) -> int:
        """Steps per stored sequence whose next observation is not the unroll's next step.

        A step's next observation is the following stored step's, except at the sequence's last
        step and where an episode was truncated (the final observation; at a termination the
        bootstrap is zeroed and never read). Truncations are ``episode_limit`` steps apart, so
        the first T − 1 steps hold at most ⌈(T − 1) / limit⌉ of them; one slot more for the
        last step.
        """
        t = self.config.segment_length
        return -(-(t - 1) // self.spec.episode_limit) + 1

    def _next_q(
        self, variables: dict[str, Any], hiddens: jax.Array, q_values: jax.Array, batch: Sequences
    ) -> jax.Array:
        """Q on each step's real next observation, [T, B, N, A], from an unroll's outputs.

        Where the episode goes on inside the sequence that is the unroll's next step
        (``q_values[t + 1]``: the same hidden state, the same observation, no reset). At the
        K stored ends (``SequenceEnds``), one more GRU step on the stored next observation
        from the hidden state after that step (the same episode, even where it ended there),
        so the network runs on K·B rows instead of T·B. ``hiddens`` and ``q_values``
        [T, B, ...].
        """
        slots = _time_major(batch.ends.step)  # [K, B]
        columns = jnp.broadcast_to(jnp.arange(slots.shape[1]), slots.shape)
        ends_obs, ends_mask = _time_major(batch.ends.obs), _time_major(batch.ends.action_mask)
        _, extra = self._q_values(
            select_network(variables, self.policy_network),
            hiddens[slots, columns].reshape(-1, *hiddens.shape[2:]),
            ends_obs.reshape(1, -1, *ends_obs.shape[2:]),
            self.agent_ids,
            jnp.zeros((1, slots.size), bool),
            ends_mask.reshape(1, -1, *ends_mask.shape[2:]),
        )
        return _next_rows(q_values, extra[0].reshape(*slots.shape, *q_values.shape[2:]), slots)

    def td_targets(
        self,
        online_next_q: jax.Array,
        target_next_q: jax.Array,
        target_mixer: Any,
        batch: Sequences,
        rewards: jax.Array,
    ) -> jax.Array:
        """Double-Q TD(λ) targets G [T, B] (``rl.returns.td_lambda_returns``).

        The online network picks each next action and the target network scores it; without
        double Q, the plain max of the target's values.
        """
        choice = online_next_q if self.config.double_q else target_next_q
        slots = _time_major(batch.ends.step)
        next_mask, next_state = (
            _next_rows(_time_major(now), _time_major(end), slots)
            for now, end in (
                (batch.action_mask, batch.ends.action_mask),
                (batch.state, batch.ends.state),
            )
        )
        best = jnp.argmax(jnp.where(next_mask, choice, -jnp.inf), axis=-1)
        chosen = jnp.take_along_axis(target_next_q, best[..., None], axis=-1)[..., 0]
        bootstrap = self._mix({"params": target_mixer}, chosen, next_state)
        targets = td_lambda_returns(
            _time_major(rewards),
            bootstrap,
            _time_major(batch.terminated),
            _time_major(batch.episode_end),
            self.config.gamma,
            self.config.td_lambda,
        )
        return jax.lax.stop_gradient(targets)

    def loss(
        self,
        params: dict[str, Any],
        learner: Learner,
        batch: Sequences,
        rewards: jax.Array,
        target_next_q: jax.Array,
    ) -> tuple[jax.Array, LossParts]:
        """Mean squared TD error of Q_tot(s_t, a_t) against G_t, plus the strategy's aux loss.

        The online unroll serves both the loss and the double-Q choice of next actions.
        """
        full = {**learner.variables, "params": params}
        hiddens, q_values = self._unroll(full, batch)
        online_next_q = self._next_q(
            full, jax.lax.stop_gradient(hiddens), jax.lax.stop_gradient(q_values), batch
        )
        targets = self.td_targets(
            online_next_q, target_next_q, learner.target_params["mixer"], batch, rewards
        )
        action = _time_major(batch.action)[..., None]
        chosen = jnp.take_along_axis(q_values, action, axis=-1)[..., 0]
        q_tot = self._mix({"params": params["mixer"]}, chosen, _time_major(batch.state))
        td_loss = jnp.mean(jnp.square(q_tot - targets))
        metrics = {
            "loss/td": td_loss,
            "q/taken_mean": jnp.mean(q_tot),
            "q/target_mean": jnp.mean(targets),
        }
        return regularised(self.strategy, full, learner.aux_state, td_loss, metrics)

    def target_values(self, variables: dict[str, Any], target_params: Any, batch: Sequences):
        """The target network's Q on each step's next observation, [T, B, N, A].

        Called once per update on every gradient step's batch together ([B] = K·B sequences):
        the target network does not change within an update (``update``), so one unroll over
        all of them replaces K unrolls of B.
        """
        target = {**variables, "params": target_params}
        hiddens, q_values = self._unroll(target, batch)
        return jax.lax.stop_gradient(self._next_q(target, hiddens, q_values, batch))

    def gradient_step(
        self, learner: Learner, inputs: StepInputs
    ) -> tuple[Learner, dict[str, jax.Array]]:
        """One double-Q TD(λ) step on a batch of sequences and its target values."""
        batch, rewards, target_next_q = inputs.batch, inputs.rewards, inputs.target_next_q
        params, opt_state, aux_state, metrics = descend(
            self.strategy,
            self.optimizer(),
            self.loss,
            learner.variables["params"],
            learner.opt_state,
            learner.aux_state,
            learner,
            batch,
            rewards,
            target_next_q,
        )
        learner = Learner(
            {**learner.variables, "params": params},
            learner.target_params,
            opt_state,
            aux_state,
            learner.grad_steps + 1,
        )
        return learner, metrics

    def update(self, state: QMIXState) -> tuple[QMIXState, dict[str, jax.Array]]:
        """Collect one sequence per environment, store them, then train on the replay.

        The update's K gradient steps sample their batches in one draw and get their targets
        from one unroll of the target network; the online networks are copied into the
        targets at the end of the update in which the gradient-step count reaches a multiple
        of ``target_update_interval`` (at most K − 1 steps later than a copy between steps).
        Training starts once the replay holds ``learning_starts`` sequences; earlier gradient
        steps are computed and dropped, which keeps the update one static program.
        """
        cfg = self.config
        steps_before = state.env_steps
        state, sequences = self.collect(state)
        replay = replay_add(state.replay, sequences)
        reward_stats = _update_reward_stats(state.reward_stats, sequences.reward)
        key, sample_key, maintain_key = jax.random.split(state.key, 3)
        k, b = cfg.gradient_steps, cfg.batch_size
        drawn: Sequences = replay_sample(replay, sample_key, k * b)
        target_next_q = self.target_values(state.variables, state.target_params, drawn)
        rewards = drawn.reward
        if cfg.standardise_rewards:
            rewards = (rewards - reward_stats.mean) / jnp.sqrt(reward_stats.var + 1e-8)

        def per_step(x: jax.Array, axis: int = 0) -> jax.Array:  # [.., K·B, ..] -> [K, .., B, ..]
            return jnp.moveaxis(x.reshape(*x.shape[:axis], k, b, *x.shape[axis + 1 :]), axis, 0)

        inputs = StepInputs(
            jax.tree_util.tree_map(per_step, drawn),
            per_step(rewards),
            per_step(target_next_q, axis=1),
        )
        learner = Learner(
            state.variables, state.target_params, state.opt_state, state.aux_state,
            state.grad_steps,
        )  # fmt: skip
        warm = replay.filled >= cfg.learning_starts
        learner, metrics = gated_steps(self.gradient_step, learner, inputs, warm)
        period = cfg.target_update_interval
        copy = learner.grad_steps // period > state.grad_steps // period
        target_params = jax.tree_util.tree_map(
            lambda new, old: jnp.where(copy, new, old),
            learner.variables["params"],
            learner.target_params,
        )
        variables = dict(
            self.strategy.maintain(
                learner.variables, maintain_key, steps_before, state.env_steps, self.total_steps
            )
        )
        metrics["train/epsilon"] = epsilon(cfg, state.env_steps)
        metrics["train/learning"] = warm.astype(jnp.float32)
        state = state._replace(
            variables=variables,
            target_params=target_params,
            opt_state=learner.opt_state,
            aux_state=learner.aux_state,
            grad_steps=learner.grad_steps,
            replay=replay,
            reward_stats=reward_stats,
            key=key,
            updates=state.updates + 1,
        )
        return state, metrics

    def train_chunk(
        self, state: QMIXState, num_updates: int
    ) -> tuple[QMIXState, dict[str, jax.Array]]:
        """``num_updates`` updates; returns mean metrics and the completed-episode stats."""
        return run_updates(self.update, state, num_updates)

    def evaluate(
        self,
        variables: dict[str, Any],
        key: jax.Array,
        num_episodes: int,
        greedy: bool | jax.Array = True,
    ) -> tuple[jax.Array, jax.Array]:
        """Return (and win) of ``num_episodes`` episodes: greedy, or ε_end-greedy."""
        return evaluate_policy(self, variables, key, num_episodes, greedy)

    # -------------------------------------------------------------------- protocol hooks

    def agent_transitions(self, states: QMIXState) -> AgentTransitions:
        """Host side, all seeds: per-agent pairs from one collection's worth of steps per seed."""
        return seed_transitions(self, states, self.config.num_envs, self.config.segment_length)

    def with_variables(self, states: QMIXState, variables: dict[str, Any]) -> QMIXState:
        """Host side, all seeds: new variables, copied targets, fresh optimizer, empty replay.

        The replay is emptied because its stored hidden states belong to the old networks.
        """
        num_seeds = jax.tree_util.tree_leaves(states.key)[0].shape[0]
        empty = jax.vmap(lambda _: self._empty_replay())(jnp.arange(num_seeds))
        return states._replace(
            variables=variables,
            target_params=variables["params"],
            opt_state=jax.vmap(self.optimizer().init)(variables["params"]),
            replay=empty,
        )


# ---------------------------------------------------------------------------------- helpers


def _time_major(x: jax.Array) -> jax.Array:
    """[B, T, ...] -> [T, B, ...]."""
    return jnp.swapaxes(x, 0, 1)


def _next_rows(rows: jax.Array, ends: jax.Array, slots: jax.Array) -> jax.Array:
    """Each step's next row: the following step's, replaced by the stored end at ``slots``.

    Args:
        rows: [T, B, ...] per-step values (Q-values, masks, states).
        ends: [K, B, ...] the values at the real next observation of steps ``slots``.
        slots: [K, B] int time indices (repeats allowed: they carry equal ends).

    Returns:
        [T, B, ...]; where no end is stored the step's next row is rows[t + 1] (the last
        step's is always stored).
    """
    columns = jnp.broadcast_to(jnp.arange(slots.shape[1]), slots.shape)
    shifted = jnp.concatenate([rows[1:], rows[-1:]])
    return shifted.at[slots, columns].set(ends)


def _final_mask(step: EnvStep) -> jax.Array:
    """Action mask of each step's real next observation, [E, N, A].

    Where the episode ended the final state's mask is not kept: a terminal bootstrap is zeroed
    anyway, and a truncated one maximises over every action.
    """
    return jnp.where(step.episode_end[:, None, None], True, step.action_mask)


def _update_reward_stats(stats: RewardStats, rewards: jax.Array) -> RewardStats:
    """Merge a batch's mean and variance into the running ones (Chan et al., 1979)."""
    batch_mean, batch_var = jnp.mean(rewards), jnp.var(rewards)
    batch_count = rewards.size
    total = stats.weight + batch_count
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * batch_count / total
    m2 = (
        stats.var * stats.weight
        + batch_var * batch_count
        + delta**2 * stats.weight * batch_count / total
    )
    return RewardStats(mean, m2 / total, total)
