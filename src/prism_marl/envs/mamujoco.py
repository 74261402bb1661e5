"""MaMuJoCo as the paper ran it: Gymnasium v5's robots on MuJoCo's physics (MJX), split into agents.

Ids: ``mamujoco:<robot>_<conf>`` (``mamujoco:ant_2x4``, ``mamujoco:hopper_3x1``,
``mamujoco:humanoid_9|8``; ``TASKS`` lists them). The model files are the ones Gymnasium's v5
environments load (shipped inside the installed gymnasium package); the physics is MuJoCo's
own, compiled to JAX by MJX; the agent partitions and per-agent observations follow
gymnasium-robotics' MaMuJoCo (``envs/mamujoco_partitions.py``); rewards, healthy checks,
frame skip and reset noise are v5's with its default arguments; episodes are cut at 1000 steps.
The one departure is forced by MJX: the humanoid's model asks for the PGS solver, which MJX does
not implement, so it runs MuJoCo's Newton solver (decision 0044 measures what that changes).

Library conventions as ``envs/mabrax.py``: each agent's observation is zero-padded to the
largest and followed by the one-hot agent id; actions are padded, the action mask marks each
agent's real dimensions, actions are clipped to the actuators' box; the global state is
MaMuJoCo's ``state()`` (the v5 observation).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.envs import mamujoco_partitions as parts
from prism_marl.envs.base import EnvSpec, EnvStep, RenderFrame, auto_reset, silenced_stdout
from prism_marl.errors import ConfigError
from prism_marl.extras import require_extra

TASKS = parts.TASKS
EPISODE_LIMIT = 1000  # gymnasium registers every v5 robot with max_episode_steps=1000


@dataclasses.dataclass(frozen=True)
class V5Rules:
    """A v5 robot's reward and health rules, with the defaults of its constructor.

    The reward is forward_weight · x velocity + healthy_reward · healthy − ctrl_weight · Σ a²
    − contact cost; x velocity is the change of ``forward`` over the step divided by dt.
    """

    forward: Literal["qpos", "torso", "mass_center"]
    """What moves forward: qpos[0] (planar robots), body 1's xpos (ant), the mass centre."""
    forward_weight: float = 1.0
    ctrl_weight: float = 0.0
    healthy_reward: float = 0.0
    contact_weight: float = 0.0
    contact_force_clip: float | None = None
    """Ant: each cfrc_ext entry clipped to ±this before squaring."""
    contact_cost_max: float | None = None
    """Humanoid: the contact cost itself clipped to at most this."""
    terminates: bool = True
    z_index: int = 1
    z_range: tuple[float, float] = (-np.inf, np.inf)
    z_inclusive: bool = False
    angle_range: tuple[float, float] | None = None
    """qpos[2] strictly inside this (hopper, walker2d)."""
    state_range: tuple[float, float] | None = None
    """Hopper: every entry of (qpos, qvel)[2:] strictly inside this."""
    finite_state: bool = False
    """Ant: every entry of (qpos, qvel) finite."""


RULES = {
    "ant": V5Rules(
        forward="torso", ctrl_weight=0.5, healthy_reward=1.0, contact_weight=5e-4,
        contact_force_clip=1.0, z_index=2, z_range=(0.2, 1.0), z_inclusive=True,
        finite_state=True,
    ),
    "halfcheetah": V5Rules(forward="qpos", ctrl_weight=0.1, terminates=False),
    "hopper": V5Rules(
        forward="qpos", ctrl_weight=1e-3, healthy_reward=1.0, z_range=(0.7, np.inf),
        angle_range=(-0.2, 0.2), state_range=(-100.0, 100.0),
    ),
    "walker2d": V5Rules(
        forward="qpos", ctrl_weight=1e-3, healthy_reward=1.0, z_range=(0.8, 2.0),
        angle_range=(-1.0, 1.0),
    ),
    "humanoid": V5Rules(
        forward="mass_center", forward_weight=1.25, ctrl_weight=0.1, healthy_reward=5.0,
        contact_weight=5e-7, contact_cost_max=10.0, z_index=2, z_range=(1.0, 2.0),
    ),
}  # fmt: skip


class MaMuJoCoState(NamedTuple):
    """What carries over between steps: MuJoCo's state, the forward position, the step count.

    Not MJX's whole ``Data``: each step recomputes everything else from (qpos, qvel) first, and
    ``Data`` holds zero-size arrays, which checkpoints cannot save. ``forward_position`` is the
    x position v5 measured after the last step, from the kinematics MuJoCo had then (computed
    before the last substep's integration, as Gymnasium reads ``data.xpos``).
    """

    qpos: jax.Array
    qvel: jax.Array
    qacc_warmstart: jax.Array
    forward_position: jax.Array
    steps: jax.Array


def data_field(data: Any, name: str) -> Any:
    """``data.<name>`` of MJX data or of MuJoCo's own ``MjData`` (the tests pass both).

    MJX keeps cinert and cfrc_ext among its JAX implementation's fields (``data._impl``).
    """
    impl = getattr(data, "_impl", None)
    if impl is not None and hasattr(impl, name):
        return getattr(impl, name)
    return getattr(data, name)


def gymnasium_asset(name: str) -> str:
    """Path of a model file that Gymnasium's MuJoCo environments load (found, not imported)."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("env mamujoco: needs gymnasium, whose package ships the robot models")
    return os.path.join(list(spec.submodule_search_locations)[0], "envs", "mujoco", "assets", name)


# Newton and line-search iteration caps per model file where fewer iterations measurably change
# nothing. MuJoCo's tolerance (1e-8) sits below what float32 resolves, so under vmap some state
# in the batch runs every step to the file's cap (100 and 50) and all wait for it. At these caps
# every sampled state agrees with MuJoCo C exactly as at the file's caps, to the largest error,
# and the environment runs 2.8-4 times faster (decision 0044, "Solver caps"). The walker and the
# ant need 8 (at 4, one walker state moved and the ant's largest reward error grew).
SOLVER_CAPS: dict[str, tuple[int, int]] = {
    "hopper.xml": (4, 8),
    "half_cheetah.xml": (4, 8),
    "walker2d_v5.xml": (8, 8),
    "ant.xml": (8, 8),
    "humanoid.xml": (8, 8),
}


def load_model(robot: parts.Robot) -> Any:
    """The robot's MuJoCo model as Gymnasium v5 compiles it, solver made MJX-compatible.

    MJX implements the CG and Newton solvers, not PGS (the humanoid's): PGS becomes Newton with
    the model's own iteration count and tolerance (decision 0044). ``SOLVER_CAPS`` lowers the
    iteration caps where that was measured to change no step.
    """
    import mujoco

    model = mujoco.MjModel.from_xml_path(gymnasium_asset(robot.xml))
    if model.opt.solver == mujoco.mjtSolver.mjSOL_PGS:
        model.opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    if robot.xml in SOLVER_CAPS:
        model.opt.iterations, model.opt.ls_iterations = SOLVER_CAPS[robot.xml]
    return model


def _gather_table(
    features: list[list[parts.Feature]], offsets: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index, low and high tables [rows, longest] into the flat source vector.

    Padding reads index 0 clipped to [0, 0], so it is exactly zero.
    """
    width = max(len(f) for f in features)
    index = np.zeros((len(features), width), np.int32)
    low = np.zeros((len(features), width), np.float32)
    high = np.zeros((len(features), width), np.float32)
    for row, row_features in enumerate(features):
        for col, f in enumerate(row_features):
            index[row, col] = offsets[f.source] + f.at
            low[row, col], high[row, col] = f.low, f.high
    return index, low, high


class MaMuJoCoEnv:
    """Agent-major MaMuJoCo on MJX (1000-step episodes, v5 rewards and terminations)."""

    def __init__(self, task: str, *, episode_limit: int | None = None, agent_obsk: int = 1):
        if task not in TASKS:
            raise ConfigError(
                f"env: unknown MaMuJoCo task {task!r}; valid: "
                + ", ".join(f"mamujoco:{t}" for t in TASKS)
            )
        require_extra("mujoco.mjx", "mamujoco", f"env mamujoco:{task}")
        with silenced_stdout():  # MJX prints "Failed to import warp" on stdout
            from mujoco import mjx
        self._mjx = mjx
        robot, partition = parts.parse_task(task)
        self.robot, self.rules = robot, RULES[task.partition("_")[0]]
        self.model = load_model(robot)
        self._mx = mjx.put_model(self.model)
        m = self.model
        sizes = parts.Sizes(m.nq, m.nv, m.nbody)
        self.agent_features = [parts.agent_features(robot, p, agent_obsk, sizes) for p in partition]
        self.state_layout = parts.state_features(robot, sizes)
        self.action_maps = [parts.action_indices(p) for p in partition]
        lengths = {"qpos": m.nq, "qvel": m.nv, "qfrc_actuator": m.nv}
        lengths |= {s: m.nbody * w for s, w in parts.ROW_WIDTH.items()}
        starts = np.cumsum([0] + [lengths[s] for s in parts.SOURCES[:-1]]).tolist()
        self._offsets = dict(zip(parts.SOURCES, starts, strict=True))
        self._obs_table = _gather_table(self.agent_features, self._offsets)
        self._state_table = _gather_table([self.state_layout], self._offsets)
        num_agents = len(partition)
        num_actions = max(len(a) for a in self.action_maps)
        self._action_mask = np.zeros((num_agents, num_actions), bool)
        # Actuator u takes agent act_agent[u]'s action dimension act_slot[u].
        self._act_agent = np.zeros(m.nu, np.int32)
        self._act_slot = np.zeros(m.nu, np.int32)
        for i, actuators in enumerate(self.action_maps):
            self._action_mask[i, : len(actuators)] = True
            self._act_agent[actuators] = i
            self._act_slot[actuators] = np.arange(len(actuators))
        assert sorted(a for acts in self.action_maps for a in acts) == list(range(m.nu))
        self._low = float(m.actuator_ctrlrange[:, 0].min())
        self._high = float(m.actuator_ctrlrange[:, 1].max())
        self.dt = float(m.opt.timestep) * robot.frame_skip
        self._body_mass = np.asarray(m.body_mass, np.float32)
        self.spec = EnvSpec(
            env_id=f"mamujoco:{task}",
            num_agents=num_agents,
            obs_size=self._obs_table[0].shape[1] + num_agents,
            num_actions=num_actions,
            state_size=len(self.state_layout),
            action_kind="continuous",
            episode_limit=episode_limit or EPISODE_LIMIT,
            homogeneous=False,
            action_low=self._low,
            action_high=self._high,
        )

    # --- physics -------------------------------------------------------------------------

    def set_state(self, qpos: jax.Array, qvel: jax.Array) -> Any:
        """MJX data at (qpos, qvel) after a forward pass (Gymnasium's ``set_state``)."""
        mjx = self._mjx
        data = mjx.make_data(self._mx).replace(qpos=qpos, qvel=qvel)
        return mjx.forward(self._mx, data)

    def start(self, qpos: jax.Array, qvel: jax.Array) -> tuple[MaMuJoCoState, Any]:
        """The state of an episode starting at (qpos, qvel), and MJX's data there."""
        data = self.set_state(qpos, qvel)
        state = MaMuJoCoState(
            qpos=data.qpos,
            qvel=data.qvel,
            qacc_warmstart=data.qacc_warmstart,
            forward_position=self.forward_position(data),
            steps=jnp.zeros((), jnp.int32),
        )
        return state, data

    def simulate(self, data: Any, ctrl: jax.Array) -> Any:
        """``frame_skip`` MuJoCo steps under ``ctrl``, then the post-constraint RNE.

        As Gymnasium's ``do_simulation``: the contact forces cfrc_ext are only computed by
        ``rne_postconstraint``, which both call after the last step.
        """
        mjx = self._mjx

        def one(d: Any, _: None) -> tuple[Any, None]:
            return mjx.step(self._mx, d), None

        data, _ = jax.lax.scan(one, data.replace(ctrl=ctrl), None, length=self.robot.frame_skip)
        return mjx.rne_postconstraint(self._mx, data)

    def sources(self, data: Any) -> jax.Array:
        """The arrays observations read, flattened in ``parts.SOURCES`` order."""
        return jnp.concatenate([jnp.ravel(data_field(data, s)) for s in parts.SOURCES])

    def observe(self, data: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(padded observations with agent ids [N, D], unpadded features [N, F], state [S])."""
        flat = self.sources(data)
        index, low, high = self._obs_table
        features = jnp.clip(flat[index], low, high)
        obs = jnp.concatenate([features, jnp.eye(self.spec.num_agents)], axis=-1)
        s_index, s_low, s_high = self._state_table
        state = jnp.clip(flat[s_index[0]], s_low[0], s_high[0])
        return obs.astype(jnp.float32), features.astype(jnp.float32), state.astype(jnp.float32)

    def global_action(self, actions: jax.Array) -> jax.Array:
        """The robot's control vector [nu] from padded per-agent actions [N, A] (clipped)."""
        clipped = jnp.clip(actions, self._low, self._high)
        return clipped[self._act_agent, self._act_slot]

    # --- v5's rules ------------------------------------------------------------------------

    def forward_position(self, data: Any) -> jax.Array:
        """The x position whose change is v5's forward velocity (MJX or MuJoCo C data)."""
        if self.rules.forward == "qpos":
            return data.qpos[0]
        if self.rules.forward == "torso":
            return data.xpos[1, 0]
        mass = jnp.asarray(self._body_mass)
        return jnp.sum(mass * data.xipos[:, 0]) / jnp.sum(mass)

    def healthy(self, data: Any) -> jax.Array:
        """v5's ``is_healthy`` for this robot (True for the half cheetah, which never falls)."""
        rules = self.rules
        state = jnp.concatenate([data.qpos, data.qvel])
        z = data.qpos[rules.z_index]
        low, high = rules.z_range
        ok = (low <= z) & (z <= high) if rules.z_inclusive else (low < z) & (z < high)
        if rules.angle_range is not None:
            angle = data.qpos[2]
            ok &= (rules.angle_range[0] < angle) & (angle < rules.angle_range[1])
        if rules.state_range is not None:
            rest = state[2:]
            ok &= jnp.all((rules.state_range[0] < rest) & (rest < rules.state_range[1]))
        if rules.finite_state:
            ok &= jnp.all(jnp.isfinite(state))
        return ok if rules.terminates else jnp.asarray(True)

    def reward(
        self, position_before: jax.Array, after: Any, ctrl: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """(v5's reward, healthy) of a step from ``position_before`` to data ``after``."""
        rules = self.rules
        velocity = (self.forward_position(after) - position_before) / self.dt
        healthy = self.healthy(after)
        reward = rules.forward_weight * velocity - rules.ctrl_weight * jnp.sum(jnp.square(ctrl))
        reward += rules.healthy_reward * healthy
        if rules.contact_weight:
            forces = data_field(after, "cfrc_ext")
            if rules.contact_force_clip is not None:
                forces = jnp.clip(forces, -rules.contact_force_clip, rules.contact_force_clip)
            cost = rules.contact_weight * jnp.sum(jnp.square(forces))
            if rules.contact_cost_max is not None:
                cost = jnp.minimum(cost, rules.contact_cost_max)
            reward -= cost
        return reward.astype(jnp.float32), healthy

    # --- the adapter -----------------------------------------------------------------------

    def reset_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """v5's reset noise around the model's initial pose (qvel Gaussian for ant, cheetah)."""
        m, scale = self.model, self.robot.reset_noise
        pos_key, vel_key = jax.random.split(key)
        noise = jax.random.uniform(pos_key, (m.nq,), minval=-scale, maxval=scale)
        qpos = jnp.asarray(m.qpos0) + noise
        if self.robot.gaussian_qvel:
            qvel = scale * jax.random.normal(vel_key, (m.nv,))
        else:
            qvel = jax.random.uniform(vel_key, (m.nv,), minval=-scale, maxval=scale)
        return qpos.astype(jnp.float32), qvel.astype(jnp.float32)

    def reset(self, key: jax.Array) -> tuple[MaMuJoCoState, EnvStep]:
        """Start an episode."""
        state, data = self.start(*self.reset_qpos_qvel(key))
        obs, _, world = self.observe(data)
        return state, EnvStep.first(obs, jnp.asarray(self._action_mask), world)

    def step_once(self, state: MaMuJoCoState, actions: jax.Array) -> tuple[MaMuJoCoState, EnvStep]:
        """One step without the auto-reset (what the equivalence tests compare)."""
        ctrl = self.global_action(actions)
        data = self._mjx.make_data(self._mx).replace(
            qpos=state.qpos, qvel=state.qvel, qacc_warmstart=state.qacc_warmstart
        )
        data = self.simulate(data, ctrl)
        reward, healthy = self.reward(state.forward_position, data, ctrl)
        obs, _, world = self.observe(data)
        steps = state.steps + 1
        terminated = ~healthy
        truncated = (steps >= self.spec.episode_limit) & ~terminated
        stepped = EnvStep.shared_reward(
            obs, jnp.asarray(self._action_mask), world, reward, terminated, truncated
        )
        next_state = MaMuJoCoState(
            qpos=data.qpos,
            qvel=data.qvel,
            qacc_warmstart=data.qacc_warmstart,
            forward_position=self.forward_position(data),
            steps=steps,
        )
        return next_state, stepped

    def step(
        self, key: jax.Array, state: MaMuJoCoState, actions: jax.Array
    ) -> tuple[MaMuJoCoState, EnvStep]:
        """Step with padded actions [N, A] (clipped to the actuators' box); auto-resets."""
        next_state, stepped = self.step_once(state, actions)
        reset_state, reset_step = self.reset(key)
        return auto_reset(reset_state, reset_step, next_state, stepped)

    def save_animation(self, frames: list[RenderFrame], path: str) -> None:
        """Draw an episode (the states before each step) as a GIF (``envs/mamujoco_render.py``)."""
        from prism_marl.envs.mamujoco_render import save_episode

        save_episode(self.model, [f.state.qpos for f in frames], path, self._act_agent.tolist())
