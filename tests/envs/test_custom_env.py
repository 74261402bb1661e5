"""A user's own environment, defined outside the package, registered and trained through the
public API (``api.configure``, ``api.train``): the guide's template
(docs/guides/adding-an-environment.md)."""

import dataclasses
import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import pytest

import prism_marl
from prism_marl import api
from prism_marl.config import EnvConfig
from prism_marl.envs import EnvSpec, EnvStep
from prism_marl.envs.base import auto_reset
from tests.conftest import TINY_PPO


class GuessState(NamedTuple):
    target: jax.Array  # [] the option every agent should pick
    t: jax.Array  # [] steps into the episode


class GuessEnv:
    """Every agent sees the target option one-hot and earns 1 for picking it (task = options)."""

    def __init__(self, options: int, episode_limit: int, num_agents: int = 2):
        self.spec = EnvSpec(
            env_id=f"guess:{options}",
            num_agents=num_agents,
            obs_size=options,
            num_actions=options,
            state_size=options,
            action_kind="discrete",
            episode_limit=episode_limit,
        )

    def _first(self, target):
        spec = self.spec
        seen = jax.nn.one_hot(target, spec.obs_size)
        obs = jnp.broadcast_to(seen, (spec.num_agents, spec.obs_size))
        mask = jnp.ones((spec.num_agents, spec.num_actions), bool)
        return obs, mask, seen

    def reset(self, key):
        target = jax.random.randint(key, (), 0, self.spec.num_actions)
        return GuessState(target, jnp.zeros((), jnp.int32)), EnvStep.first(*self._first(target))

    def step(self, key, state, actions):
        t = state.t + 1
        reward = (actions == state.target).astype(jnp.float32)
        obs, mask, seen = self._first(state.target)
        stepped = EnvStep(
            obs=obs,
            action_mask=mask,
            global_state=seen,
            reward=reward,
            team_reward=jnp.sum(reward),
            terminated=jnp.asarray(False),
            truncated=t >= self.spec.episode_limit,
            final_obs=obs,
            final_global_state=seen,
            won=jnp.asarray(False),
        )
        return auto_reset(*self.reset(key), GuessState(state.target, t), stepped)


def make_guess(config: EnvConfig) -> GuessEnv:
    return GuessEnv(int(config.id.partition(":")[2]), config.episode_limit or 4)


@pytest.fixture
def guess_family():
    prism_marl.register_env("guess", make_guess)
    yield
    prism_marl.unregister_env("guess")


def test_a_registered_user_environment_trains_through_the_public_api(tmp_path, guess_family):
    config = api.configure(
        sharing="fups",
        algo="mappo",
        env="guess:3",
        algo_fields=dataclasses.asdict(TINY_PPO),
        num_seeds=1,
        total_steps=32,
        eval_interval=32,
        eval_episodes=2,
        final_eval_episodes=2,
        diversity_episodes=0,
        run_dir=str(tmp_path / "guess"),
    )
    summary = api.train(config)
    assert summary["env"] == "guess:3" and summary["env_steps"] == 32
    assert 0.0 <= summary["final_return_mean"] <= 2 * 4  # 2 agents, 4 steps, at most 1 each
    saved = json.loads((tmp_path / "guess" / "config.json").read_text())
    assert saved["env"]["id"] == "guess:3"


def test_a_family_registered_anew_builds_a_new_algorithm(guess_family):
    """Runs of equal settings share one algorithm (and its compiled programs) within a process,
    but not across a re-registration: the new factory's environment is the one trained."""
    from prism_marl.run import build_algorithm

    config = api.configure(sharing="fups", env="guess:3", algo_fields=dataclasses.asdict(TINY_PPO))
    first = build_algorithm(config)
    assert build_algorithm(config) is first

    def three_agents(env_config: EnvConfig) -> GuessEnv:
        return GuessEnv(3, 4, num_agents=3)

    prism_marl.register_env("guess", three_agents, overwrite=True)
    again = build_algorithm(config)
    assert again is not first
    assert (first.spec.num_agents, again.spec.num_agents) == (2, 3)
