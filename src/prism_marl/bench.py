"""``prism-marl bench``: training throughput per strategy, side by side, as ratios to FuPS.

Each strategy's jitted training chunk is compiled first, then timed over several chunks in
the same process, interleaved round-robin so that machine drift hits every strategy alike.
Also times the environment alone (random valid actions) as the reference ceiling.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp

from prism_marl.algos.ppo import PPO, PPOConfig
from prism_marl.config import EnvConfig
from prism_marl.envs import make_env
from prism_marl.sharing import STRATEGIES


def env_only_rate(env_id: str, num_envs: int, steps: int, repeats: int) -> float:
    """Environment steps per second with random valid actions (jit, vmap over envs)."""
    env = make_env(EnvConfig(id=env_id))

    @jax.jit
    def rollout(state: Any, step: Any, key: jax.Array) -> Any:
        def body(carry: Any, k: jax.Array) -> tuple[Any, None]:
            state, step = carry
            logits = jnp.where(step.action_mask, 0.0, -1e9)
            actions = jax.random.categorical(k, logits)
            return jax.vmap(env.step)(jax.random.split(k, num_envs), state, actions), None

        return jax.lax.scan(body, (state, step), jax.random.split(key, steps))[0]

    state, step = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), num_envs))
    jax.block_until_ready(rollout(state, step, jax.random.PRNGKey(1)))
    start = time.perf_counter()
    for r in range(repeats):
        jax.block_until_ready(rollout(state, step, jax.random.PRNGKey(r + 2)))
    return num_envs * steps * repeats / (time.perf_counter() - start)


def training_rates(
    env_id: str, strategies: list[str], algo: str, updates: int, repeats: int, num_seeds: int
) -> dict[str, float]:
    """Environment steps per second (all seeds) of training chunks, per strategy."""
    env = make_env(EnvConfig(id=env_id))
    config = PPOConfig()
    runs = {}
    for name in strategies:
        ppo = PPO(env, STRATEGIES[name](), config, algo == "mappo", 10**9)
        state = jax.jit(jax.vmap(ppo.init))(jax.random.split(jax.random.PRNGKey(0), num_seeds))
        chunk = jax.jit(jax.vmap(lambda s, ppo=ppo: ppo.train_chunk(s, updates)))
        state, _ = chunk(state)
        jax.block_until_ready(state)
        runs[name] = [chunk, state, 0.0]
    for _ in range(repeats):
        for name in strategies:
            chunk, state, spent = runs[name]
            start = time.perf_counter()
            state, metrics = chunk(state)
            jax.block_until_ready(metrics)
            runs[name] = [chunk, state, spent + time.perf_counter() - start]
    steps = config.steps_per_update * updates * repeats * num_seeds
    return {name: steps / runs[name][2] for name in strategies}


def run_bench(args: Any) -> int:
    """Print a markdown table of training throughput and ratios to FuPS."""
    strategies = args.strategies
    if "fups" not in strategies:
        strategies = ["fups", *strategies]
    rates = training_rates(
        args.env, strategies, args.algo, args.updates, args.repeats, args.num_seeds
    )
    env_rate = env_only_rate(args.env, PPOConfig().num_envs * args.num_seeds, 256, args.repeats)
    print(
        f"training throughput, {args.algo} on {args.env}, {args.num_seeds} seeds, "
        f"{args.updates} updates × {args.repeats} chunks per strategy (interleaved)\n"
    )
    print("| strategy | env steps/s | ratio to FuPS |")
    print("|---|---:|---:|")
    for name in strategies:
        print(f"| {name} | {rates[name]:,.0f} | {rates[name] / rates['fups']:.2f} |")
    print(
        f"| environment alone (random actions) | {env_rate:,.0f} | {env_rate / rates['fups']:.2f} |"
    )
    return 0
