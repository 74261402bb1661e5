"""Any jaxmarl environment behind the agent-major API (family ``jaxmarl:``; ``mpe:`` builds on it).

``jaxmarl:<name>`` takes jaxmarl's own registered name (``jaxmarl:MPE_simple_spread_v3``). The
adapter reads everything from jaxmarl's spaces and one traced reset:

- Agents in ``env.agents`` order. Observations flattened to float32 and zero-padded at the end
  to the largest agent's size; no agent id is appended (FuPS+ID and Kaleidoscope add one).
  ``spec.homogeneous`` holds only when every agent has the same observation size and action
  space (agents of different roles see different layouts).
- Actions: all ``Discrete`` (padded to the largest count; the mask marks each agent's own
  actions, and jaxmarl's ``get_avail_actions`` where the environment implements it) or all
  ``Box`` (flattened, padded to the most dimensions; the mask marks each agent's own, which are
  clipped to its box; ``spec.action_low/high`` are the widest bounds). Anything else, or a mix,
  is refused with a ``ConfigError``.
- Global state: jaxmarl's ``world_state`` observation where it has one (SMAX), else
  ``get_world_state(state)`` where implemented (its leaves flattened and concatenated: MPE
  FACMAC's is every agent's unrestricted view), else every agent's padded observation
  concatenated (N·D features; the other MPE tasks have no world state).
- Rewards: each agent's own; the team reward is their sum (LBF's contract, EPyMARL's common
  reward), so mixers and the benchmark's return see every agent's share.
- Ends: jaxmarl's ``step_env`` without its auto-reset, so the final observation is kept. The
  adapter counts steps: an episode that reaches ``episode_limit`` is truncated, one that
  jaxmarl's ``dones["__all__"]`` ends earlier is terminated. jaxmarl does not tell its own time
  limit apart from other ends; the default limit (``max_steps`` + 1) is the step it ends on,
  so it counts as a truncation, but a longer ``--env.episode-limit`` makes it a termination.
  ``time_limit_only`` (MPE, whose only end is its time limit) ignores jaxmarl's dones.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.envs.base import EnvSpec, EnvStep, auto_reset, import_jaxmarl
from prism_marl.envs.smax import strong_types
from prism_marl.errors import ConfigError

# What a probe of an optional jaxmarl method raises where the environment lacks it: the base
# class's NotImplementedError, or a half-written override's AttributeError (MPE FACMAC's world
# state reads fields its state does not have).
_NOT_PROVIDED = (NotImplementedError, AttributeError)


class JaxMARLState(NamedTuple):
    """The jaxmarl state and the steps taken in the episode."""

    env_state: Any
    t: jax.Array


class _Actions(NamedTuple):
    """Static facts about the agents' action spaces."""

    kind: str
    sizes: list[int]
    low: list[np.ndarray]
    high: list[np.ndarray]
    shapes: list[tuple[int, ...]]


def _flat_bound(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A Box bound (scalar or array) as a flat float32 vector over the box's shape."""
    return np.broadcast_to(np.asarray(value, np.float32), shape).ravel()


def _action_spaces(env: Any, env_id: str) -> _Actions:
    """Each agent's action space as counts (Discrete) or flat bounds (Box)."""
    spaces = [env.action_space(a) for a in env.agents]
    if all(isinstance(getattr(s, "n", None), int) for s in spaces):
        sizes = [int(s.n) for s in spaces]
        return _Actions("discrete", sizes, [], [], [()] * len(sizes))
    if not all(hasattr(s, "low") and hasattr(s, "high") for s in spaces):
        names = sorted({type(s).__name__ for s in spaces})
        raise ConfigError(
            f"env: {env_id} has action spaces {', '.join(names)}; the jaxmarl adapter takes "
            "all Discrete or all Box"
        )
    shapes = [tuple(int(d) for d in s.shape) for s in spaces]
    low = [_flat_bound(s.low, shape) for s, shape in zip(spaces, shapes, strict=True)]
    high = [_flat_bound(s.high, shape) for s, shape in zip(spaces, shapes, strict=True)]
    if not all(np.all(np.isfinite(bound)) for bound in low + high):
        raise ConfigError(f"env: {env_id} has unbounded Box actions; the adapter needs bounds")
    return _Actions("continuous", [bound.size for bound in low], low, high, shapes)


def _provides(method: Any, *args: Any) -> bool:
    """Whether an optional jaxmarl method exists and traces on these arguments."""
    if not callable(method):
        return False
    try:
        jax.eval_shape(method, *args)
    except _NOT_PROVIDED:
        return False
    return True


class JaxMARLEnv:
    """Agent-major adapter of one constructed jaxmarl environment.

    Args:
        env: A jaxmarl ``MultiAgentEnv`` (e.g. ``jaxmarl.make(name, **kwargs)``).
        env_id: The id runs and results name it by (``family:task``).
        episode_limit: Steps after which an episode is truncated (an upper bound on its length).
        time_limit_only: jaxmarl's dones are only its time limit: ignore them, and end every
            episode at ``episode_limit`` as a truncation.
    """

    def __init__(self, env: Any, env_id: str, *, episode_limit: int, time_limit_only: bool = False):
        self._env = env
        self.agents = list(env.agents)
        self.time_limit_only = time_limit_only
        self._actions = _action_spaces(env, env_id)
        obs, state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
        obs_sizes = [int(np.prod(obs[a].shape)) for a in self.agents]
        self._obs_size = max(obs_sizes)
        num_agents, num_actions = len(self.agents), max(self._actions.sizes)
        self._mask = np.zeros((num_agents, num_actions), bool)
        for i, size in enumerate(self._actions.sizes):
            self._mask[i, :size] = True
        self._avail = self._actions.kind == "discrete" and _provides(env.get_avail_actions, state)
        self._world = "world_state" if "world_state" in obs else None
        if self._world is None and _provides(getattr(env, "get_world_state", None), state):
            self._world = "get_world_state"
        state_size = num_agents * self._obs_size
        if self._world == "world_state":
            state_size = int(np.prod(obs["world_state"].shape))
        elif self._world == "get_world_state":
            world = jax.eval_shape(env.get_world_state, state)
            state_size = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(world))
        continuous = self._actions.kind == "continuous"
        self.spec = EnvSpec(
            env_id=env_id,
            num_agents=num_agents,
            obs_size=self._obs_size,
            num_actions=num_actions,
            state_size=state_size,
            action_kind="continuous" if continuous else "discrete",
            episode_limit=episode_limit,
            action_low=float(min(b.min() for b in self._actions.low)) if continuous else -1.0,
            action_high=float(max(b.max() for b in self._actions.high)) if continuous else 1.0,
            homogeneous=len(set(obs_sizes)) == 1 and len(set(self._bounds())) == 1,
        )

    def _bounds(self) -> list[tuple[int, tuple[float, ...], tuple[float, ...]]]:
        """Per agent: action count or dimensions, and the box bounds (empty when discrete)."""
        actions = self._actions
        if actions.kind == "discrete":
            return [(size, (), ()) for size in actions.sizes]
        return [
            (size, tuple(lo.tolist()), tuple(hi.tolist()))
            for size, lo, hi in zip(actions.sizes, actions.low, actions.high, strict=True)
        ]

    def _observe(self, obs: dict[str, jax.Array], state: Any) -> tuple[jax.Array, ...]:
        """Padded observations [N, D], action mask [N, A] and global state [S]."""
        rows = [jnp.ravel(obs[a]).astype(jnp.float32) for a in self.agents]
        stacked = jnp.stack([jnp.pad(r, (0, self._obs_size - r.size)) for r in rows])
        mask = jnp.asarray(self._mask)
        if self._avail:
            avail = self._env.get_avail_actions(state)
            allowed = [jnp.ravel(avail[a]).astype(bool) for a in self.agents]
            width = self._mask.shape[1]
            mask = mask & jnp.stack([jnp.pad(r, (0, width - r.size)) for r in allowed])
        if self._world == "world_state":
            world = jnp.ravel(obs["world_state"])
        elif self._world == "get_world_state":
            leaves = jax.tree_util.tree_leaves(self._env.get_world_state(state))
            world = jnp.concatenate([jnp.ravel(x) for x in leaves])
        else:
            world = jnp.ravel(stacked)
        return stacked, mask, world.astype(jnp.float32)

    def _action_dict(self, actions: jax.Array) -> dict[str, jax.Array]:
        """The per-agent actions jaxmarl takes, from padded ones ([N] ints or [N, A] floats)."""
        spaces = self._actions
        if spaces.kind == "discrete":
            return {a: actions[i] for i, a in enumerate(self.agents)}
        return {
            a: jnp.clip(actions[i, : spaces.sizes[i]], spaces.low[i], spaces.high[i]).reshape(
                spaces.shapes[i]
            )
            for i, a in enumerate(self.agents)
        }

    def reset(self, key: jax.Array) -> tuple[JaxMARLState, EnvStep]:
        """Start an episode."""
        obs, env_state = self._env.reset(key)
        env_state = strong_types(env_state)
        stacked, mask, world = self._observe(obs, env_state)
        state = JaxMARLState(env_state, jnp.zeros((), jnp.int32))
        return state, EnvStep.first(stacked, mask, world)

    def step(
        self, key: jax.Array, state: JaxMARLState, actions: jax.Array
    ) -> tuple[JaxMARLState, EnvStep]:
        """Step every agent with padded actions; resets finished episodes."""
        step_key, reset_key = jax.random.split(key)
        obs, env_state, rewards, dones, _ = self._env.step_env(
            step_key, state.env_state, self._action_dict(actions)
        )
        env_state = strong_types(env_state)
        t = state.t + 1
        at_limit = t >= self.spec.episode_limit
        terminated = jnp.asarray(False)
        if not self.time_limit_only:
            terminated = jnp.asarray(dones["__all__"]).astype(bool) & ~at_limit
        stacked, mask, world = self._observe(obs, env_state)
        reward = jnp.stack([rewards[a] for a in self.agents]).astype(jnp.float32)
        stepped = EnvStep(
            obs=stacked,
            action_mask=mask,
            global_state=world,
            reward=reward,
            team_reward=jnp.sum(reward),
            terminated=terminated,
            truncated=at_limit,
            final_obs=stacked,
            final_global_state=world,
            won=jnp.asarray(False),
        )
        reset_state, reset_step = self.reset(reset_key)
        return auto_reset(reset_state, reset_step, JaxMARLState(env_state, t), stepped)


def make_jaxmarl_env(
    name: str,
    *,
    episode_limit: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    env_id: str | None = None,
    time_limit_only: bool = False,
) -> JaxMARLEnv:
    """Build jaxmarl's ``name`` (with ``env_kwargs``) behind ``JaxMARLEnv``.

    Args:
        name: jaxmarl's registered name, e.g. ``MPE_simple_spread_v3``.
        episode_limit: Truncate after this many steps; None takes the environment's
            ``max_steps`` + 1 (jaxmarl checks its limit before counting the step: MPE and SMAX
            episodes last ``max_steps`` + 1 steps).
        env_kwargs: Passed to ``jaxmarl.make``.
        env_id: The id runs name it by; default ``jaxmarl:<name>``.
        time_limit_only: See ``JaxMARLEnv``.

    Raises:
        ConfigError: jaxmarl has no such environment, it cannot be built, or it has no
            ``max_steps`` and no ``episode_limit`` was given.
    """
    jaxmarl = import_jaxmarl()
    env_id = env_id or f"jaxmarl:{name}"
    if name not in jaxmarl.registered_envs:
        raise ConfigError(
            f"env: unknown jaxmarl environment {name!r}; jaxmarl's registered names, e.g. "
            "jaxmarl:MPE_simple_spread_v3, jaxmarl:MPE_simple_speaker_listener_v4, "
            "jaxmarl:switch_riddle"
        )
    try:
        env = jaxmarl.make(name, **(env_kwargs or {}))
    except (ImportError, TypeError, ValueError) as error:
        raise ConfigError(f"env: jaxmarl cannot build {name!r} ({error})") from error
    limit = episode_limit
    if limit is None and isinstance(getattr(env, "max_steps", None), int):
        limit = env.max_steps + 1
    if limit is None:
        raise ConfigError(
            f"env.episode-limit: {env_id} has no max_steps to take the limit from; set one"
        )
    return JaxMARLEnv(env, env_id, episode_limit=limit, time_limit_only=time_limit_only)
