"""One multi-agent environment API with a leading agent axis.

Every adapter is a pure, jittable pair ``reset(key)`` / ``step(key, state, actions)`` returning an
``EnvStep``; ``step`` resets finished episodes itself and keeps the real final observation.
Axis glossary: N agents, D observation features, A actions (padded), S global-state features.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple, Protocol

import jax
import jax.numpy as jnp


@contextlib.contextmanager
def silenced_stdout() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null for the block (banners that bypass ``sys.stdout``).

    jaxmarl's banner and MJX's "Failed to import warp" lines are printed at import time by code
    that writes past ``sys.stdout``; they corrupt the JSON some commands print.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
            for stream in (sys.stdout, sys.__stdout__):
                if stream is not None:
                    stream.flush()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def import_jaxmarl() -> Any:
    """``jaxmarl``, imported without the banner it prints to stdout (it corrupts JSON output)."""
    with silenced_stdout():
        import jaxmarl
        import jaxmarl.environments  # noqa: F401  (the banner's source)
    return jaxmarl


class EnvStep(NamedTuple):
    """What an agent-major environment returns after reset or step.

    Attributes:
        obs: [N, D] float32 observations (after auto-reset: the new episode's first).
        action_mask: [N, A] bool, True where an action (or action dimension) is valid.
        global_state: [S] float32 centralised state.
        reward: [N] per-agent rewards of the step.
        team_reward: [] the team's reward (the benchmark's episode return sums it).
        terminated: [] bool, the episode ended for a reason inside the MDP.
        truncated: [] bool, the episode was cut by the time limit (and did not terminate).
        final_obs: [N, D] the observation the step reached, before any auto-reset.
        final_global_state: [S] likewise for the global state.
        won: [] bool, the episode ended in a win (SMAX); False elsewhere.
    """

    obs: jax.Array
    action_mask: jax.Array
    global_state: jax.Array
    reward: jax.Array
    team_reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    final_global_state: jax.Array
    won: jax.Array

    @classmethod
    def first(cls, obs: jax.Array, action_mask: jax.Array, global_state: jax.Array) -> EnvStep:
        """The step that starts an episode: no reward, no end, final observation = obs."""
        false = jnp.asarray(False)
        return cls(
            obs=obs,
            action_mask=action_mask,
            global_state=global_state,
            reward=jnp.zeros((obs.shape[0],), jnp.float32),
            team_reward=jnp.zeros((), jnp.float32),
            terminated=false,
            truncated=false,
            final_obs=obs,
            final_global_state=global_state,
            won=false,
        )

    @classmethod
    def shared_reward(
        cls,
        obs: jax.Array,
        action_mask: jax.Array,
        global_state: jax.Array,
        reward: jax.Array,
        terminated: jax.Array,
        truncated: jax.Array,
    ) -> EnvStep:
        """A step whose team reward [] is every agent's (the robots); no win, no auto-reset yet."""
        return cls(
            obs=obs,
            action_mask=action_mask,
            global_state=global_state,
            reward=jnp.full((obs.shape[0],), reward),
            team_reward=reward,
            terminated=terminated,
            truncated=truncated,
            final_obs=obs,
            final_global_state=global_state,
            won=jnp.asarray(False),
        )

    @property
    def episode_end(self) -> jax.Array:
        """Terminated or truncated."""
        return self.terminated | self.truncated


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """Static facts about an environment."""

    env_id: str
    num_agents: int
    obs_size: int
    num_actions: int
    state_size: int
    action_kind: Literal["discrete", "continuous"]
    episode_limit: int
    has_win: bool = False
    action_low: float = -1.0
    action_high: float = 1.0
    homogeneous: bool = True
    """Agents share one observation layout (False on MaBrax: each sees its own limbs)."""


class RenderFrame(NamedTuple):
    """One rendered step: the key passed to ``step``, the state before it and the actions."""

    key: jax.Array
    state: Any
    action: jax.Array


class MultiAgentEnv(Protocol):
    """The adapter protocol."""

    spec: EnvSpec

    def reset(self, key: jax.Array) -> tuple[Any, EnvStep]:
        """Start an episode."""
        ...

    def step(self, key: jax.Array, state: Any, actions: jax.Array) -> tuple[Any, EnvStep]:
        """Advance one step with actions [N] (discrete) or [N, A] (continuous); auto-resets."""
        ...


def auto_reset(
    reset_state: Any, reset_step: EnvStep, next_state: Any, next_step: EnvStep
) -> tuple[Any, EnvStep]:
    """Replace state and observation by a fresh episode's where ``next_step`` ended one.

    Rewards, flags and the final observation stay those of ``next_step``.
    """
    done = next_step.episode_end
    state = jax.tree_util.tree_map(
        lambda fresh, old: jnp.where(done, fresh, old), reset_state, next_state
    )
    step = next_step._replace(
        obs=jnp.where(done, reset_step.obs, next_step.obs),
        action_mask=jnp.where(done, reset_step.action_mask, next_step.action_mask),
        global_state=jnp.where(done, reset_step.global_state, next_step.global_state),
    )
    return state, step
