"""SMACv2-style battles through jaxmarl's SMAX with heuristic enemies.

Ids: ``smax:smacv2_5_units``, ``smax:smacv2_10_units``, ``smax:smacv2_20_units``, the classic
maps (``smax:3m``, ``smax:2s3z``, ``smax:5m_vs_6m``, …) and marine battles of any size
(``smax:64m_vs_64m``, ``smax:128m_vs_100m``), with jaxmarl's baseline settings
(enemies see ally actions, walls kill, heuristic enemies attack the closest unit). The adapter
steps without jaxmarl's auto-reset (``step_env``) so the final observation is kept, and reads
the outcome from the pre-reset state: a win is every enemy dead with an ally alive, a
truncation is the time limit with both teams alive. The global state is jaxmarl's world state
scaled like its observations (``SMAXEnv.normalised_world_state``).
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp

from prism_marl.envs.base import EnvSpec, EnvStep, RenderFrame, auto_reset, import_jaxmarl
from prism_marl.errors import ConfigError

MARINES_PATTERN = re.compile(r"^(\d+)m(?:_vs_(\d+)m)?$")
MAX_UNITS = 1024
"""Most units (allies + enemies) a generated marine battle may hold: every unit observes every
other, so one environment step costs O(units²) (docs/results/scale)."""


def marine_scenario(map_name: str) -> Any | None:
    """The ``Scenario`` of ``Nm`` or ``Nm_vs_Mm`` (N marines against M), else None.

    SMAC's marine maps (3m, 8m, 25m, 5m_vs_6m, 27m_vs_30m) are this family at fixed sizes;
    any N and M are built with jaxmarl's scenario API on the same 32x32 map, both teams starting
    in a 4x4 square as the classic maps do.
    """
    match = MARINES_PATTERN.match(map_name)
    if match is None:
        return None
    from jaxmarl.environments.smax.smax_env import Scenario

    allies = int(match.group(1))
    enemies = int(match.group(2) or allies)
    if allies < 1 or enemies < 1 or allies + enemies > MAX_UNITS:
        raise ConfigError(
            f"env: smax:{map_name} needs 1 to {MAX_UNITS} units in all, at least one a side; "
            f"got {allies} allies and {enemies} enemies"
        )
    return Scenario(jnp.zeros((allies + enemies,), jnp.uint8), allies, enemies, False, False)


def strong_types(tree: Any) -> Any:
    """Clear JAX weak-type flags.

    They differ between SMAX's (and brax's) reset and step states and would make a jitted step
    retrace once.
    """
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=x.dtype), tree)


class SMAXEnv:
    """Agent-major adapter of ``HeuristicEnemySMAX``."""

    def __init__(self, map_name: str, *, episode_limit: int | None = None):
        make = import_jaxmarl().make
        from jaxmarl.environments.smax import map_name_to_scenario

        try:
            scenario = map_name_to_scenario(map_name)
        except (KeyError, ValueError) as error:
            scenario = marine_scenario(map_name)
            if scenario is None:
                raise ConfigError(
                    f"env: unknown SMAX map {map_name!r}; e.g. smax:3m, smax:2s3z, "
                    "smax:5m_vs_6m, smax:smacv2_5_units, smax:smacv2_10_units, "
                    "smax:smacv2_20_units, or smax:Nm_vs_Mm for N marines against M "
                    "(smax:64m_vs_64m)"
                ) from error
        kwargs: dict[str, Any] = {
            "see_enemy_actions": True,
            "walls_cause_death": True,
            "attack_mode": "closest",
        }
        if episode_limit is not None:
            kwargs["max_steps"] = episode_limit
        self._env: Any = make("HeuristicEnemySMAX", scenario=scenario, **kwargs)
        env: Any = self._env
        self.agents = env.agents
        self.num_allies = env.num_allies
        obs_size = env.observation_space(self.agents[0]).shape[0]
        # jaxmarl checks the limit before counting the step: an episode lasts max_steps + 1.
        self.spec = EnvSpec(
            env_id=f"smax:{map_name}",
            num_agents=len(self.agents),
            obs_size=obs_size,
            num_actions=env.action_space(self.agents[0]).n,
            state_size=env.state_size,
            action_kind="discrete",
            episode_limit=env.max_steps + 1,
            has_win=True,
        )

    def _observe(self, obs: dict[str, jax.Array], state: Any) -> tuple[jax.Array, ...]:
        stacked = jnp.stack([obs[a] for a in self.agents]).astype(jnp.float32)
        avail = self._env.get_avail_actions(state)
        mask = jnp.stack([avail[a] for a in self.agents]).astype(bool)
        return stacked, mask, self.normalised_world_state(obs["world_state"], state.state)

    def normalised_world_state(self, world: jax.Array, state: Any) -> jax.Array:
        """The world state [U·(F + 2)] scaled like jaxmarl's observations, into [0, 1].

        jaxmarl's state carries raw positions (up to the map's 32), raw weapon cooldowns and
        raw unit-type indices, where its observations scale positions by the map size and
        cooldowns by the unit type's. Mixers and centralised critics read this vector directly
        (SMAC's own state is normalised), so it gets the observations' scaling: per unit
        [health, x / W, y / H, clip(cooldown / type cooldown, 0, 1), type one-hot], then the
        teams (0/1) and the type indices / (types − 1). Dead units stay all zero.
        """
        inner = self._env._env
        units, features = inner.num_agents, len(inner.own_features)
        per_unit = world[: units * features].reshape(units, features)
        cooldown = inner.unit_type_weapon_cooldowns[state.unit_types]
        per_unit = per_unit.at[:, 1].divide(inner.map_width)
        per_unit = per_unit.at[:, 2].divide(inner.map_height)
        per_unit = per_unit.at[:, 3].set(jnp.clip(per_unit[:, 3] / cooldown, 0.0, 1.0))
        teams = world[units * features : units * (features + 1)]
        types = world[units * (features + 1) :] / max(inner.unit_type_bits - 1, 1)
        return jnp.concatenate([per_unit.reshape(-1), teams, types]).astype(jnp.float32)

    def reset(self, key: jax.Array) -> tuple[Any, EnvStep]:
        """Start a battle."""
        obs, state = self._env.reset(key)
        state = strong_types(state)
        stacked, mask, world = self._observe(obs, state)
        return state, EnvStep.first(stacked, mask, world)

    def step(self, key: jax.Array, state: Any, actions: jax.Array) -> tuple[Any, EnvStep]:
        """Step all allies with integer actions [N]; resets finished battles."""
        step_key, reset_key = jax.random.split(key)
        action_dict = {a: actions[i] for i, a in enumerate(self.agents)}
        obs, next_state, rewards, dones, _ = self._env.step_env(step_key, state, action_dict)
        next_state = strong_types(next_state)
        stacked, mask, world = self._observe(obs, next_state)
        reward = jnp.stack([rewards[a] for a in self.agents]).astype(jnp.float32)
        alive = next_state.state.unit_alive
        allies_alive = jnp.any(alive[: self.num_allies])
        enemies_alive = jnp.any(alive[self.num_allies :])
        done = dones["__all__"]
        truncated = done & allies_alive & enemies_alive
        stepped = EnvStep(
            obs=stacked,
            action_mask=mask,
            global_state=world,
            reward=reward,
            team_reward=reward[0],
            terminated=done & ~truncated,
            truncated=truncated,
            final_obs=stacked,
            final_global_state=world,
            won=done & allies_alive & ~enemies_alive,
        )
        reset_state, reset_step = self.reset(reset_key)
        return auto_reset(reset_state, reset_step, next_state, stepped)

    def save_animation(self, frames: list[RenderFrame], path: str) -> None:
        """Write the battle as a GIF, one frame per world tick (``smax_render``, host side).

        jaxmarl replays each step's internal world ticks from (key, state, actions); ``step``
        splits its key the way jaxmarl's own ``step`` does, so the replay is exact.
        """
        from prism_marl.envs.smax_render import save_battle_gif

        sequence = [
            (frame.key, frame.state, {a: frame.action[i] for i, a in enumerate(self.agents)})
            for frame in frames
        ]
        save_battle_gif(self._env, sequence, path)
