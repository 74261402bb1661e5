"""Level-Based Foraging: lbforaging's rules in JAX (default) or jumanji's LevelBasedForaging.

Task names follow the standard LBF benchmark: ``lbf:[Ns-]GxG-Pp-Ff[-coop]`` (``Ns`` sight N,
otherwise the whole grid; ``coop`` forced cooperation; agent levels 1..2), 50-step episodes.
The default rules (``rules="lbforaging"``, ``envs/lbf_rules.py``) reproduce the ``lbforaging``
2.0.0 package's ``Foraging[-Ns]-GxG-Pp-Ff[-coop]-v3`` step for step (tested against it);
``rules="jumanji"`` keeps jumanji 1.1.2's variant (other movement, start states and
observations). Both normalise rewards, so the team return is at most 1 per episode.
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

from prism_marl.envs import lbf_rules
from prism_marl.envs.base import EnvSpec, EnvStep, RenderFrame, auto_reset
from prism_marl.envs.lbf_rules import LBFRules, LBFState
from prism_marl.errors import ConfigError

TASK_PATTERN = re.compile(r"^(?:(\d+)s-)?(\d+)x(\d+)-(\d+)p-(\d+)f(-coop)?$")
NUM_ACTIONS = 6  # noop, up, down, left, right, load
MAX_AGENT_LEVEL = 2
RULES = ("lbforaging", "jumanji")


def normalised_state(obs: jax.Array, grid_size: int) -> jax.Array:
    """The centralised state: every agent's observation [N, D] concatenated, divided by G.

    s = vec(o_1, ..., o_N) / G, [N, D] -> [N·D] float32: coordinates 0..G-1 map into [0, 1),
    padding -1 to -1/G, levels k to k/G. EPyMARL feeds LBF's raw values to QMIX's
    hypernetworks; here they inflated Q_tot and stalled learning (measured in
    docs/decisions/0012-qmix-sequences.md). Agents' observations stay raw, as in the benchmark.
    """
    return obs.reshape(-1) / grid_size


@dataclasses.dataclass(frozen=True)
class LBFTask:
    """A parsed LBF task name."""

    grid_size: int
    num_agents: int
    num_food: int
    sight: int
    force_coop: bool

    @classmethod
    def parse(cls, name: str, rules: str = "lbforaging") -> LBFTask:
        """Parse ``[Ns-]GxG-Pp-Ff[-coop]`` (the part after ``lbf:``) for the given rules.

        The food count must fit the rules' spawn rule in every episode: for lbforaging
        ``lbf_rules.guaranteed_food_capacity``; for jumanji one food per 2x2 block of the interior.
        """
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
        if task.sight < 1:
            raise ConfigError(f"env: {name!r} needs a sight >= 1")
        if rules == "jumanji":
            # Foods sit on interior cells, none adjacent to another: roughly one per 3x3 block.
            capacity = ((max(grid - 2, 0) + 1) // 2) ** 2
        else:
            capacity = lbf_rules.guaranteed_food_capacity(grid, task.num_agents)
        if task.num_food < 1 or task.num_agents < 1 or task.num_food > capacity:
            raise ConfigError(
                f"env: {name!r} cannot place {task.num_food} foods with {task.num_agents} agents "
                f"on a {grid}x{grid} grid under {rules} rules (at most {capacity} foods)"
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


def to_jumanji_state(state: LBFState) -> State:
    """Jumanji's ``State`` of the same position (host side, for its viewer)."""
    n, f = state.agent_level.shape[0], state.food_level.shape[0]
    agents = Agent(
        id=jnp.arange(n),
        position=state.agent_pos,
        level=state.agent_level,
        loading=jnp.zeros((n,), bool),
    )
    foods = Food(
        id=jnp.arange(f),
        position=state.food_pos,
        level=state.food_level,
        eaten=state.food_eaten,
    )
    return State(
        agents=agents,
        food_items=foods,
        step_count=state.step_count,
        key=jax.random.PRNGKey(0),
    )


class _ForagingBackend:
    """lbforaging's rules (``lbf_rules``) behind the EnvStep contract."""

    def __init__(self, rules: LBFRules):
        self.rules = rules

    def _first(self, state: LBFState) -> EnvStep:
        obs = lbf_rules.observe(self.rules, state)
        return EnvStep.first(
            obs,
            lbf_rules.valid_actions(self.rules, state),
            normalised_state(obs, self.rules.grid_size),
        )

    def reset(self, key: jax.Array) -> tuple[LBFState, EnvStep]:
        state = lbf_rules.spawn(self.rules, key)
        return state, self._first(state)

    def step(self, key: jax.Array, state: LBFState, actions: jax.Array) -> tuple[LBFState, EnvStep]:
        rules = self.rules
        stepped, reward = lbf_rules.transition(rules, state, actions)
        terminated, truncated = lbf_rules.episode_flags(rules, stepped)
        done = terminated | truncated
        final_obs = lbf_rules.observe(rules, stepped)
        # Observe only the state that continues (fresh where the episode ended): the same
        # outputs as base.auto_reset with one observation fewer per step.
        fresh = lbf_rules.spawn(rules, key)
        next_state = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), fresh, stepped)
        obs = lbf_rules.observe(rules, next_state)
        return next_state, EnvStep(
            obs=obs,
            action_mask=lbf_rules.valid_actions(rules, next_state),
            global_state=normalised_state(obs, rules.grid_size),
            reward=reward,
            team_reward=jnp.sum(reward),
            terminated=terminated,
            truncated=truncated,
            final_obs=final_obs,
            final_global_state=normalised_state(final_obs, rules.grid_size),
            won=jnp.asarray(False),
        )

    def save_animation(self, frames: list[RenderFrame], path: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        from jumanji.environments.routing.lbf.viewer import LevelBasedForagingViewer

        viewer = LevelBasedForagingViewer(self.rules.grid_size)
        states = [to_jumanji_state(f.state) for f in frames]
        viewer.animate(states, interval=300, save_path=path)


class _JumanjiBackend:
    """jumanji's LevelBasedForaging behind the EnvStep contract."""

    def __init__(self, task: LBFTask, episode_limit: int, generator: str):
        generators = {"uniform": UniformGenerator, "jumanji": RandomGenerator}
        self.episode_limit = episode_limit
        self.grid_size = task.grid_size
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

    def _observe(
        self, timestep: Any, reward: jax.Array, terminated: jax.Array, truncated: jax.Array
    ) -> EnvStep:
        obs = timestep.observation.agents_view.astype(jnp.float32)
        global_state = normalised_state(obs, self.grid_size)
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
        state, timestep = self._env.reset(key)
        zeros = jnp.zeros((timestep.observation.agents_view.shape[0],), jnp.float32)
        false = jnp.asarray(False)
        return state, self._observe(timestep, zeros, false, false)

    def step(self, key: jax.Array, state: State, actions: jax.Array) -> tuple[State, EnvStep]:
        next_state, timestep = self._env.step(state, actions.astype(jnp.int32))
        terminated = jnp.all(next_state.food_items.eaten)
        truncated = (next_state.step_count >= self.episode_limit) & ~terminated
        stepped = self._observe(
            timestep, timestep.reward.astype(jnp.float32), terminated, truncated
        )
        reset_state, reset_step = self.reset(key)
        return auto_reset(reset_state, reset_step, next_state, stepped)

    def save_animation(self, frames: list[RenderFrame], path: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        self._env.animate([f.state for f in frames], interval=300, save_path=path)


class LBFEnv:
    """Agent-major LBF adapter (vector observations), lbforaging's or jumanji's rules.

    Args:
        task_name: ``[Ns-]GxG-Pp-Ff[-coop]``.
        episode_limit: steps per episode (time-limit truncation).
        rules: ``lbforaging`` (the benchmark's game, default) or ``jumanji``.
        generator: jumanji's start states only: ``uniform`` or ``jumanji`` (row-biased).
        penalty: lbforaging only: subtracted from each agent of a failed loading group.
        fix_quirks: lbforaging only: fix the chain-collision and widened-sight quirks.
    """

    def __init__(
        self,
        task_name: str,
        *,
        episode_limit: int = 50,
        rules: str = "lbforaging",
        generator: str = "uniform",
        penalty: float = 0.0,
        fix_quirks: bool = False,
    ):
        if rules not in RULES:
            raise ConfigError(f"env.lbf-rules: must be one of lbforaging, jumanji; got {rules!r}")
        if generator not in ("uniform", "jumanji"):
            raise ConfigError(
                f"env.lbf-generator: must be one of uniform, jumanji; got {generator!r}"
            )
        if episode_limit < 1:
            raise ConfigError("env.episode-limit: must be >= 1")
        if penalty < 0:
            raise ConfigError(f"env.lbf-penalty: must be >= 0; got {penalty}")
        if rules == "lbforaging" and generator != "uniform":
            raise ConfigError("env.lbf-generator: only with --env.lbf-rules jumanji")
        if rules == "jumanji" and (penalty > 0 or fix_quirks):
            raise ConfigError(
                "env.lbf-rules: jumanji has no penalty or quirk switches; use lbforaging"
            )
        task = LBFTask.parse(task_name, rules)
        self.task = task
        self.rules = rules
        self._backend: _ForagingBackend | _JumanjiBackend
        if rules == "jumanji":
            self._backend = _JumanjiBackend(task, episode_limit, generator)
        else:
            self._backend = _ForagingBackend(
                LBFRules(
                    grid_size=task.grid_size,
                    num_agents=task.num_agents,
                    num_food=task.num_food,
                    sight=task.sight,
                    force_coop=task.force_coop,
                    max_agent_level=MAX_AGENT_LEVEL,
                    penalty=penalty,
                    episode_limit=episode_limit,
                    fix_quirks=fix_quirks,
                )
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

    def reset(self, key: jax.Array) -> tuple[Any, EnvStep]:
        """Start an episode."""
        return self._backend.reset(key)

    def step(self, key: jax.Array, state: Any, actions: jax.Array) -> tuple[Any, EnvStep]:
        """Step all agents with integer actions [N]; resets finished episodes."""
        return self._backend.step(key, state, actions)

    def save_animation(self, frames: list[RenderFrame], path: str) -> None:
        """Write the episode's states as a GIF (jumanji's viewer, host side)."""
        self._backend.save_animation(frames, path)
