"""mamujoco: against gymnasium-robotics 1.4.2's MaMuJoCo (mamujoco_v1) on MuJoCo C.

Two kinds of check. Layout and rules (every task, no MJX compile): gymnasium-robotics plays
random episodes on MuJoCo C; our observation, state and reward functions read the same
``MjData`` and must give its observations, ``state()``, rewards and terminations. Physics
(MJX, compiled once per robot): from states those episodes reached, set in both, one step of
the same joint actions gives the same next state, observations, reward and termination within
the float tolerances of decision 0044.
"""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.config import EnvConfig
from prism_marl.envs import make_env
from prism_marl.envs.mamujoco import TASKS, MaMuJoCoEnv, MaMuJoCoState
from prism_marl.errors import ConfigError

mamujoco_v1 = pytest.importorskip("gymnasium_robotics").mamujoco_v1

SCENARIO = {"ant": "Ant", "halfcheetah": "HalfCheetah", "hopper": "Hopper",
            "walker2d": "Walker2d", "humanoid": "Humanoid"}  # fmt: skip
PAPER_TASKS = ["ant_2x4", "ant_4x2", "halfcheetah_6x1", "halfcheetah_2x3", "hopper_3x1",
               "walker2d_2x3", "humanoid_9|8"]  # fmt: skip


def reference(task):
    robot, _, conf = task.partition("_")
    return mamujoco_v1.parallel_env(SCENARIO[robot], conf)


def snapshot(data):
    """What v5's reward reads from the data before a step."""
    return types.SimpleNamespace(qpos=data.qpos.copy(), xpos=data.xpos.copy(),
                                 xipos=data.xipos.copy())  # fmt: skip


def random_joint_actions(ref, rng):
    return {a: rng.uniform(ref.action_space(a).low, ref.action_space(a).high)
            for a in ref.possible_agents}  # fmt: skip


def padded(env, actions_by_agent, agents):
    out = np.zeros((env.spec.num_agents, env.spec.num_actions), np.float32)
    for i, agent in enumerate(agents):
        out[i, : len(actions_by_agent[agent])] = actions_by_agent[agent]
    return out


def test_paper_tasks_are_registered_and_unknown_ones_list_the_valid_ids():
    assert set(PAPER_TASKS) <= set(TASKS)
    with pytest.raises(ConfigError, match=r"mamujoco:ant_2x4, .*mamujoco:humanoid_9\|8") as err:
        make_env(EnvConfig(id="mamujoco:ant_3x3"))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("task", PAPER_TASKS)
def test_partitions_observations_state_and_rewards_match_gymnasium_robotics(task):
    env, ref = MaMuJoCoEnv(task), reference(task)
    agents = ref.possible_agents
    assert env.spec.num_agents == len(agents) and not env.spec.homogeneous
    assert env.spec.action_low == ref.action_space(agents[0]).low[0]
    sizes = [ref.observation_space(a).shape[0] for a in agents]
    assert [len(f) for f in env.agent_features] == sizes
    assert env.spec.obs_size == max(sizes) + len(agents)
    probe = np.arange(env.model.nu, dtype=np.float64)
    local = ref.map_global_action_to_local_actions(probe)
    for i, agent in enumerate(agents):
        np.testing.assert_array_equal(env.action_maps[i], local[agent])
    inner = ref.single_agent_env.unwrapped
    rng = np.random.default_rng(0)
    checked = ends = 0
    for episode in range(3):
        observations, _ = ref.reset(seed=episode)
        for _ in range(40):
            mine, features, state = (np.asarray(x) for x in env.observe(inner.data))
            for i, agent in enumerate(agents):
                np.testing.assert_allclose(features[i, : sizes[i]], observations[agent],
                                           rtol=1e-6, atol=1e-5)  # fmt: skip
                assert not features[i, sizes[i] :].any()
                np.testing.assert_array_equal(mine[i, -len(agents) :], np.eye(len(agents))[i])
            np.testing.assert_allclose(state, ref.state(), rtol=1e-6, atol=1e-5)
            assert state.shape == (env.spec.state_size,)
            actions = random_joint_actions(ref, rng)
            before = snapshot(inner.data)
            observations, rewards, terms, truncs, _ = ref.step(actions)
            ctrl = env.global_action(jnp.asarray(padded(env, actions, agents)))
            np.testing.assert_allclose(ctrl, inner.data.ctrl, rtol=1e-6)
            reward, healthy = env.reward(before, inner.data, ctrl)
            np.testing.assert_allclose(reward, rewards[agents[0]], rtol=1e-4, atol=1e-4)
            assert bool(~healthy) == terms[agents[0]]
            checked += 1
            if terms[agents[0]] or truncs[agents[0]]:
                ends += 1
                break
    assert checked >= 20
