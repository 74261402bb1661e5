"""Level-Based Foraging through jumanji's LevelBasedForaging.

Task names follow the standard LBF benchmark: ``lbf:[Ns-]GxG-Pp-Ff[-coop]`` (``Ns`` sight N,
otherwise the whole grid; ``coop`` forced cooperation; agent levels up to 2), 50-step episodes.
Rewards are jumanji's normalised ones, so the team return (the sum of all agents' rewards) is at
most 1 per episode.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import jax
import jax.numpy as jnp
from jumanji.environments import LevelBasedForaging
from jumanji.environments.routing.lbf.generator import RandomGenerator
from jumanji.environments.routing.lbf.types import Agent, Food, State

from prism_marl.envs.base import EnvSpec, EnvStep, auto_reset
from prism_marl.sharing.base import ConfigError

TASK_PATTERN = re.compile(r"^(?:(\d+)s-)?(\d+)x(\d+)-(\d+)p-(\d+)f(-coop)?$")
NUM_ACTIONS = 6  # noop, up, down, left, right, load
MAX_AGENT_LEVEL = 2


@dataclasses.dataclass(frozen=True)
class LBFTask:
    """A parsed LBF task name."""

    grid_size: int
    num_agents: int
    num_food: int
    sight: int
    force_coop: bool

    @classmethod
    def parse(cls, name: str) -> LBFTask:
        """Parse ``[Ns-]GxG-Pp-Ff[-coop]`` (the part after ``lbf:``)."""
        match = TASK_PATTERN.match(name)
        if match is None:
            raise ConfigError(
                f"env: unknown LBF task {name!r}; expected lbf:[Ns-]GxG-Pp-Ff[-coop], "
                "e.g. lbf:8x8-2p-2f-coop or lbf:2s-10x10-3p-3f"
            )
        sight, rows, cols, agents, food, coop = match.groups()
        if rows != cols:
            raise ConfigError(f"env: LBF grids are square, got {rows}x{cols}")
        grid = int(rows)
        task = cls(grid, int(agents), int(food), int(sight) if sight else grid, coop is not None)
        # Foods sit on interior cells, none adjacent to another: roughly one per 3x3 block.
        interior = max(grid - 2, 0)
        capacity = ((interior + 1) // 2) ** 2
        if task.num_food < 1 or task.num_agents < 1 or task.num_food > capacity:
            raise ConfigError(
                f"env: {name!r} cannot place {task.num_food} foods with {task.num_agents} agents "
                f"on a {grid}x{grid} grid (at most {capacity} foods)"
            )
        if task.num_food + task.num_agents > grid * grid:
            raise ConfigError(f"env: {name!r} has more agents and foods than cells")
        return task


class UniformGenerator(RandomGenerator):
    """jumanji's generator with agents placed uniformly over every cell without food.

    jumanji 1.1.2 masks ``mask.at[food_positions]``, which indexes whole rows, so no agent ever
    starts on a row whose index equals any food coordinate; this masks the food cells only.
    """

    def __call__(self, key: jax.Array) -> State:
        """Sample a start state."""
        key_food, key_agents, key_food_level, key_agent_level, key = jax.random.split(key, 5)
        food_positions = self.sample_food(key_food)
        mask = jnp.ones((self.grid_size, self.grid_size), dtype=bool)
        mask = mask.at[food_positions[:, 0], food_positions[:, 1]].set(False)
        agent_positions = self.sample_agents(key=key_agents, mask=mask.ravel())
        agent_levels = self.sample_levels(self.max_agent_level, (self.num_agents,), key_agent_level)
        max_food_level = jnp.sum(jnp.sort(agent_levels)[:3])
        food_levels = jnp.where(
            self.force_coop,
            jnp.full((self.num_food,), max_food_level),
            self.sample_levels(max_food_level, (self.num_food,), key_food_level),  # type: ignore[arg-type]
        )
        agents = jax.vmap(Agent)(
            id=jnp.arange(self.num_agents),
            position=agent_positions,
            level=agent_levels,
            loading=jnp.zeros((self.num_agents,), dtype=bool),
        )
        food_items = jax.vmap(Food)(
            id=jnp.arange(self.num_food),
            position=food_positions,
            level=food_levels,
            eaten=jnp.zeros((self.num_food,), dtype=bool),
        )
        return State(
            key=key, step_count=jnp.array(0, jnp.int32), agents=agents, food_items=food_items
        )


class LBFEnv:
    """Agent-major adapter of jumanji's LevelBasedForaging (vector observations)."""

    def __init__(self, task_name: str, *, episode_limit: int = 50, generator: str = "uniform"):
        task = LBFTask.parse(task_name)
        generators = {"uniform": UniformGenerator, "jumanji": RandomGenerator}
        if generator not in generators:
            raise ConfigError(
                f"env.lbf-generator: must be one of uniform, jumanji; got {generator!r}"
            )
        if episode_limit < 1:
            raise ConfigError("env.episode-limit: must be >= 1")
        self.task = task
        self._env = LevelBasedForaging(
            generator=generators[generator](
                grid_size=task.grid_size,
                fov=task.sight,
                num_agents=task.num_agents,
                num_food=task.num_food,
                max_agent_level=MAX_AGENT_LEVEL,
                force_coop=task.force_coop,
            ),
            time_limit=episode_limit,
        )
        obs_size = 3 * (task.num_food + task.num_agents)
        self.spec = EnvSpec(
            env_id=f"lbf:{task_name}",
            num_agents=task.num_agents,
            obs_size=obs_size,
            num_actions=NUM_ACTIONS,
            state_size=obs_size * task.num_agents,
            action_kind="discrete",
            episode_limit=episode_limit,
        )

    def _observe(
        self,
        state: State,
        timestep: Any,
        reward: jax.Array,
        terminated: jax.Array,
        truncated: jax.Array,
    ) -> EnvStep:
        obs = timestep.observation.agents_view.astype(jnp.float32)
        global_state = obs.reshape(-1)
        return EnvStep(
            obs=obs,
            action_mask=timestep.observation.action_mask,
            global_state=global_state,
            reward=reward,
            team_reward=jnp.sum(reward),
            terminated=terminated,
            truncated=truncated,
            final_obs=obs,
            final_global_state=global_state,
            won=jnp.asarray(False),
        )

    def reset(self, key: jax.Array) -> tuple[State, EnvStep]:
        """Start an episode."""
        state, timestep = self._env.reset(key)
        zeros = jnp.zeros((self.spec.num_agents,), jnp.float32)
        false = jnp.asarray(False)
        return state, self._observe(state, timestep, zeros, false, false)

    def step(self, key: jax.Array, state: State, actions: jax.Array) -> tuple[State, EnvStep]:
        """Step all agents with integer actions [N]; resets finished episodes."""
        next_state, timestep = self._env.step(state, actions.astype(jnp.int32))
        terminated = jnp.all(next_state.food_items.eaten)
        truncated = (next_state.step_count >= self.spec.episode_limit) & ~terminated
        stepped = self._observe(
            next_state, timestep, timestep.reward.astype(jnp.float32), terminated, truncated
        )
        reset_state, reset_step = self.reset(key)
        return auto_reset(reset_state, reset_step, next_state, stepped)

    def save_animation(self, states: list[State], path: str) -> None:
        """Write the episode's states as a GIF (jumanji's viewer, host side)."""
        import matplotlib

        matplotlib.use("Agg")
        self._env.animate(states, interval=300, save_path=path)
