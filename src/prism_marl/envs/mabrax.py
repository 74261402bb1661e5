"""MaMuJoCo-style robots through jaxmarl's MaBrax, with our own padding.

Ids: ``mabrax:ant_4x2``, ``mabrax:halfcheetah_6x1``, ``mabrax:hopper_3x1``,
``mabrax:walker2d_2x3``, ``mabrax:humanoid_9|8``. Agents see different numbers of features and
control different numbers of joints. Each agent's own features are written from position 0 and
zero-padded to the largest size (jaxmarl's ``max`` homogenisation writes them from position
i + 1, so they shift with the agent index), then the one-hot agent id is appended; actions are
padded to the largest size and the action mask marks each agent's real dimensions. Indices in
jaxmarl's observation maps that point past brax's observation (humanoid, halfcheetah) are
dropped rather than silently repeating the last feature.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.envs.base import EnvSpec, EnvStep, auto_reset, import_jaxmarl
from prism_marl.envs.smax import strong_types
from prism_marl.errors import ConfigError
from prism_marl.extras import require_extra

SCENARIOS = ("ant_4x2", "halfcheetah_6x1", "hopper_3x1", "walker2d_2x3", "humanoid_9|8")


class MABraxEnv:
    """Agent-major adapter of jaxmarl's ``MABraxEnv`` (positional backend, 1000-step episodes)."""

    def __init__(self, scenario: str, *, episode_limit: int | None = None):
        if scenario not in SCENARIOS:
            raise ConfigError(
                f"env: unknown MaBrax scenario {scenario!r}; valid: "
                + ", ".join(f"mabrax:{s}" for s in SCENARIOS)
            )
        require_extra("brax", "mabrax", f"env mabrax:{scenario}")  # jaxmarl's MaBrax needs it
        make = import_jaxmarl().make

        limit = episode_limit or 1000
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # brax's notice that it is no longer maintained: the pinned version is the one
            # tested here, and the notice broke the one-line errors of runs that stop on
            # bad input after building the environment (QMIX on a MaBrax task).
            warnings.filterwarnings("ignore", "Brax System, piplines", UserWarning)
            self._env: Any = make(scenario, episode_length=limit, auto_reset=False)
        env: Any = self._env
        self.agents = list(env.agents)
        # brax's ``observation_size`` runs a reset op by op (seconds of tiny compiles per
        # process); the shape alone needs only a trace.
        reset = jax.eval_shape(env.env.unwrapped.reset, jax.random.PRNGKey(0))
        global_size = int(reset.obs.shape[-1])
        self.obs_maps = [
            np.asarray([i for i in np.asarray(env.agent_obs_mapping[a]) if i < global_size])
            for a in self.agents
        ]
        self.action_maps = [np.asarray(env.agent_action_mapping[a]) for a in self.agents]
        num_agents = len(self.agents)
        feature_size = max(m.size for m in self.obs_maps)
        num_actions = max(m.size for m in self.action_maps)
        # Gather table [N, F] into brax's observation (padding reads a zero appended at the end).
        self._gather = np.full((num_agents, feature_size), global_size)
        for i, indices in enumerate(self.obs_maps):
            self._gather[i, : indices.size] = indices
        self._action_mask = np.zeros((num_agents, num_actions), bool)
        for i, indices in enumerate(self.action_maps):
            self._action_mask[i, : indices.size] = True
        self.spec = EnvSpec(
            env_id=f"mabrax:{scenario}",
            num_agents=num_agents,
            obs_size=feature_size + num_agents,
            num_actions=num_actions,
            state_size=global_size,
            action_kind="continuous",
            episode_limit=limit,
            homogeneous=False,
        )

    def _observe(self, global_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        padded = jnp.concatenate([global_obs, jnp.zeros((1,), global_obs.dtype)])
        features = padded[self._gather]
        obs = jnp.concatenate([features, jnp.eye(self.spec.num_agents)], axis=-1)
        return obs.astype(jnp.float32), global_obs.astype(jnp.float32)

    def _global_action(self, actions: jax.Array) -> jax.Array:
        clipped = jnp.clip(actions, -1.0, 1.0)
        out = jnp.zeros((self._env.env.action_size,))
        for i, indices in enumerate(self.action_maps):
            out = out.at[indices].set(clipped[i, : indices.size])
        return out

    def reset(self, key: jax.Array) -> tuple[Any, EnvStep]:
        """Start an episode."""
        state = strong_types(self._env.env.reset(key))
        obs, world = self._observe(state.obs)
        return state, EnvStep.first(obs, jnp.asarray(self._action_mask), world)

    def step(self, key: jax.Array, state: Any, actions: jax.Array) -> tuple[Any, EnvStep]:
        """Step with padded actions [N, A] in [-1, 1]; resets finished episodes."""
        next_state = strong_types(self._env.env.step(state, self._global_action(actions)))
        obs, world = self._observe(next_state.obs)
        done = next_state.done.astype(bool)
        truncated = done & (next_state.info["truncation"] > 0)
        reward = next_state.reward.astype(jnp.float32)
        stepped = EnvStep.shared_reward(
            obs, jnp.asarray(self._action_mask), world, reward, done & ~truncated, truncated
        )
        reset_state, reset_step = self.reset(key)
        return auto_reset(reset_state, reset_step, next_state, stepped)
