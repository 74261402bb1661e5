"""Environment adapter contract over every supported environment id."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prism_marl.config import EnvConfig
from prism_marl.envs import make_env

LBF = [
    "8x8-2p-2f-coop",
    "2s-8x8-2p-2f-coop",
    "10x10-3p-3f",
    "2s-10x10-3p-3f",
    "15x15-3p-5f",
    "15x15-4p-3f",
    "15x15-4p-5f",
    "3s-12x12-5p-4f-coop",
]
SMAX = ["3m", "2s3z", "5m_vs_6m", "smacv2_5_units", "smacv2_10_units", "smacv2_20_units"]
MABRAX = ["ant_4x2", "halfcheetah_6x1", "hopper_3x1", "walker2d_2x3", "humanoid_9|8"]
MAMUJOCO = ["ant_2x4", "ant_4x2", "halfcheetah_6x1", "halfcheetah_2x3", "hopper_3x1",
            "walker2d_2x3", "humanoid_9|8"]  # fmt: skip
# jaxmarl's MPE through the generic adapter: discrete and continuous, agents of different roles
# (padded observations and actions), FACMAC's world state, and the generic family's own id.
JAXMARL = ["mpe:simple_spread", "mpe:simple_spread_continuous", "mpe:simple_speaker_listener",
           "mpe:simple_tag", "mpe:simple_world_comm", "mpe:simple_facmac_3a",
           "jaxmarl:MPE_simple_spread_v3"]  # fmt: skip
# The fast tier checks one task of each size class per family; `make test-all` checks them all.
FAST = {"lbf:8x8-2p-2f-coop", "lbf:2s-8x8-2p-2f-coop", "lbf:10x10-3p-3f", "lbf:2s-10x10-3p-3f",
        "lbf:15x15-4p-5f", "smax:3m", "smax:smacv2_5_units", "mabrax:hopper_3x1",
        "mpe:simple_spread"}  # fmt: skip
# Agents that see different observation layouts (rl/diversity.py measures no SND on them):
# MaBrax's and MaMuJoCo's limbs, MPE's roles.
HETEROGENEOUS = {*(f"mabrax:{t}" for t in MABRAX), *(f"mamujoco:{t}" for t in MAMUJOCO),
                 "mpe:simple_speaker_listener",
                 "mpe:simple_tag", "mpe:simple_world_comm"}  # fmt: skip
ENV_IDS = [
    pytest.param(env_id, marks=() if env_id in FAST else pytest.mark.slow(minutes=0.5))
    for env_id in [f"lbf:{t}" for t in LBF]
    + [f"smax:{t}" for t in SMAX]
    + [f"mabrax:{t}" for t in MABRAX]
    + [f"mamujoco:{t}" for t in MAMUJOCO]
    + JAXMARL
]
LIMIT = 4
NUM_ENVS = 2


def random_actions(key, step, spec):
    if spec.action_kind == "discrete":
        return jax.random.categorical(key, jnp.where(step.action_mask, 0.0, -1e9))
    noise = jax.random.uniform(key, step.action_mask.shape, minval=-1, maxval=1)
    return jnp.where(step.action_mask, noise, 0.0)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_contract(env_id):
    env = make_env(EnvConfig(id=env_id, episode_limit=LIMIT))
    spec = env.spec
    traces = []

    @jax.jit
    def step(keys, state, actions):
        traces.append(1)
        return jax.vmap(env.step)(keys, state, actions)

    state, first = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), NUM_ENVS))
    n = spec.num_agents
    assert spec.homogeneous == (env_id not in HETEROGENEOUS)
    assert first.obs.shape == (NUM_ENVS, n, spec.obs_size) and first.obs.dtype == jnp.float32
    assert first.action_mask.shape == (NUM_ENVS, n, spec.num_actions)
    assert first.action_mask.dtype == jnp.bool_
    assert first.global_state.shape == (NUM_ENVS, spec.state_size)
    assert bool(jnp.all(jnp.any(first.action_mask, axis=-1))), "every agent has a valid action"

    current, ends, records = first, [], []
    for t in range(spec.episode_limit):
        key = jax.random.PRNGKey(t + 1)
        actions = random_actions(key, current, spec)
        state, out = step(jax.random.split(key, NUM_ENVS), state, actions)
        assert out.reward.shape == (NUM_ENVS, n) and out.team_reward.shape == (NUM_ENVS,)
        assert out.final_obs.shape == out.obs.shape
        assert not bool(jnp.any(out.terminated & out.truncated))
        ends.append(np.asarray(out.episode_end))
        records.append(out)
        current = out
    assert len(traces) == 1, "one trace for every step"
    ends = np.stack(ends)
    last = records[-1]
    # Episodes that reach the limit are truncated there (unless they terminated).
    no_early_end = ~ends[:-1].any(axis=0)
    assert np.all(ends[-1][no_early_end])
    assert np.all(np.asarray(last.truncated | last.terminated)[no_early_end])
    # Auto-reset: a finished episode's final observation is kept apart from the new one.
    for out, ended in zip(records, ends, strict=True):
        same = np.all(np.asarray(out.final_obs == out.obs), axis=(1, 2))
        assert np.all(same[~ended])
        if ended.any():
            assert not np.all(same[ended])
