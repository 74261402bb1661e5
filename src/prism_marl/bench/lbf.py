"""LBF measurements: environment-only throughput per rules, random-policy team returns.

``python -m prism_marl.bench.lbf rates --task 8x8-2p-2f-coop`` times lbforaging's rules
against jumanji's (jit, vmap over environments, scan over steps, random valid actions);
``python -m prism_marl.bench.lbf returns --task 8x8-2p-2f-coop`` measures the team return
of a random policy over whole episodes, in our rules and, with ``--reference-episodes``, in the
lbforaging package itself (a test-only dependency). Policies: ``any`` draws each agent's action
uniformly from all six (lbforaging turns invalid ones into NONE; ``action_space.sample()``),
``valid`` uniformly from its valid actions (``bench.env.random_actions``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.bench.env import POLICIES, random_actions, random_rollout
from prism_marl.cpu import tune_cpu

# prism_marl.envs.lbf is imported inside the functions: jumanji, which it imports, starts jax's
# backend at import, and `main` must tune the process first (prism_marl.cpu).


def lbf_env_rates(
    task: str, num_envs: int = 512, steps: int = 256, repeats: int = 5
) -> dict[str, float]:
    """Environment steps per second of each rules set (lbforaging, jumanji) on ``task``.

    Both are compiled first, then timed round-robin so machine drift hits both alike.
    """
    from prism_marl.envs.lbf import LBFEnv

    runs = {}
    for rules in ("lbforaging", "jumanji"):
        env = LBFEnv(task, rules=rules)
        rollout = random_rollout(env, num_envs, steps)
        keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
        carry = jax.jit(jax.vmap(env.reset))(keys)
        carry = jax.block_until_ready(rollout(*carry, jax.random.PRNGKey(1)))
        runs[rules] = [rollout, carry, 0.0]
    for r in range(repeats):
        for rules in runs:
            rollout, carry, spent = runs[rules]
            start = time.perf_counter()
            carry = jax.block_until_ready(rollout(*carry, jax.random.PRNGKey(r + 2)))
            runs[rules] = [rollout, carry, spent + time.perf_counter() - start]
    return {rules: num_envs * steps * repeats / run[2] for rules, run in runs.items()}


def random_policy_returns(
    task: str, episodes: int, seed: int = 0, policy: str = "any", rules: str = "lbforaging"
) -> np.ndarray:
    """[episodes] team returns of a random policy (``POLICIES``), one whole episode each."""
    from prism_marl.envs.lbf import LBFEnv

    env = LBFEnv(task, rules=rules)
    limit = env.spec.episode_limit

    def episode(key: jax.Array) -> jax.Array:
        k_reset, k_steps = jax.random.split(key)
        state, first = env.reset(k_reset)

        def body(carry: Any, key: jax.Array) -> tuple[Any, jax.Array]:
            state, step, running = carry
            k_act, k_env = jax.random.split(key)
            actions = random_actions(env, k_act, step.action_mask, policy)
            state, step = env.step(k_env, state, actions)
            reward = jnp.where(running, step.team_reward, 0.0)
            return (state, step, running & ~step.episode_end), reward

        carry = (state, first, jnp.asarray(True))
        return jnp.sum(jax.lax.scan(body, carry, jax.random.split(k_steps, limit))[1])

    run = jax.jit(jax.vmap(episode))
    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    return np.concatenate([np.asarray(run(chunk)) for chunk in np.array_split(keys, 8)])


def lbforaging_random_returns(
    task: str, episodes: int, seed: int = 0, policy: str = "any"
) -> np.ndarray:
    """[episodes] team returns of a random policy (``POLICIES``) in the lbforaging package."""
    from lbforaging.foraging.environment import ForagingEnv

    from prism_marl.envs.lbf import LBFTask

    parsed = LBFTask.parse(task)
    env = ForagingEnv(
        players=parsed.num_agents,
        min_player_level=1,
        max_player_level=2,
        field_size=(parsed.grid_size, parsed.grid_size),
        min_food_level=1,
        max_food_level=None,
        max_num_food=parsed.num_food,
        sight=parsed.sight,
        max_episode_steps=50,
        force_coop=parsed.force_coop,
        grid_observation=False,
    )
    rng = np.random.default_rng(seed)
    returns = np.zeros(episodes)
    env.reset(seed=seed)
    for e in range(episodes):
        if e:
            env.reset()
        done = False
        while not done:
            if policy == "valid":
                valid = [[a.value for a in env._valid_actions[p]] for p in env.players]
                actions = [rng.choice(v) for v in valid]
            else:
                actions = list(rng.integers(0, 6, len(env.players)))
            _, rewards, done, _, _ = env.step(actions)
            returns[e] += sum(rewards)
    return returns


def _summary(name: str, returns: np.ndarray) -> str:
    sem = returns.std(ddof=1) / np.sqrt(len(returns))
    return f"{name}: {returns.mean():.4f} ± {sem:.4f} (mean ± s.e., {len(returns)} episodes)"


def main(argv: list[str] | None = None) -> None:
    """Command line: ``rates`` or ``returns`` (see the module docstring)."""
    tune_cpu()
    parser = argparse.ArgumentParser(prog="python -m prism_marl.bench.lbf")
    parser.add_argument("what", choices=["rates", "returns"])
    parser.add_argument("--task", default="8x8-2p-2f-coop")
    parser.add_argument("--episodes", type=int, default=20000)
    parser.add_argument("--reference-episodes", type=int, default=0)
    parser.add_argument("--num-envs", type=int, default=512)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", choices=POLICIES, default="any")
    args = parser.parse_args(argv)
    if args.what == "rates":
        rates = lbf_env_rates(args.task, args.num_envs, args.steps, args.repeats)
        for rules, rate in rates.items():
            print(f"{rules}: {rate:,.0f} env steps/s")
        print(f"lbforaging / jumanji: {rates['lbforaging'] / rates['jumanji']:.2f}")
        return
    returns = random_policy_returns(args.task, args.episodes, args.seed, args.policy)
    print(_summary("ours", returns))
    if args.reference_episodes:
        returns = lbforaging_random_returns(
            args.task, args.reference_episodes, args.seed, args.policy
        )
        print(_summary("lbforaging", returns))


if __name__ == "__main__":
    main()
