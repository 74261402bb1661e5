"""``prism-marl bench env``, and what every benchmark shares: random actions, env-only rates.

Environments alone under uniformly random valid actions (jit, vmap over environments, scan over
steps): the ceiling ``bench train`` divides by, and the rollout ``bench.lbf`` times per rule set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from prism_marl.config import EnvConfig
from prism_marl.envs import make_env
from prism_marl.envs.base import MultiAgentEnv

# The environments of ``bench train`` and ``bench env`` when neither --envs nor a preset names one.
DEFAULT_TRAIN_ENVS = ("lbf:8x8-2p-2f-coop", "smax:smacv2_5_units", "mabrax:ant_4x2")

# Random policies: ``valid`` draws uniformly from each agent's valid actions, ``any`` from all of
# them (lbforaging's ``action_space.sample()``; the environment turns invalid ones into no-ops).
POLICIES = ("any", "valid")


def random_actions(
    env: MultiAgentEnv, key: jax.Array, action_mask: jax.Array, policy: str = "valid"
) -> jax.Array:
    """Uniformly random actions for a batch: [..., N] integers or [..., N, A] in the box.

    Discrete actions follow ``policy`` (``POLICIES``); continuous ones are uniform in the box and
    zero where ``action_mask`` is off.
    """
    spec = env.spec
    if spec.action_kind == "discrete":
        allowed = action_mask if policy == "valid" else jnp.ones_like(action_mask)
        return jax.random.categorical(key, jnp.where(allowed, 0.0, -1e9))
    box = jax.random.uniform(
        key, action_mask.shape, minval=spec.action_low, maxval=spec.action_high
    )
    return jnp.where(action_mask, box, 0.0)


def random_rollout(env: MultiAgentEnv, num_envs: int, steps: int) -> Callable[..., Any]:
    """Jitted ``(state, step, key) -> (state, step)``: ``steps`` vmapped environment steps.

    Actions are random and valid (``random_actions``); ``state`` and ``step`` are batched over
    ``num_envs`` environments, as ``jax.vmap(env.reset)`` returns them.
    """

    def body(carry: Any, key: jax.Array) -> tuple[Any, None]:
        state, step = carry
        act_key, step_key = jax.random.split(key)
        actions = random_actions(env, act_key, step.action_mask)
        return jax.vmap(env.step)(jax.random.split(step_key, num_envs), state, actions), None

    def rollout(state: Any, step: Any, key: jax.Array) -> Any:
        return jax.lax.scan(body, (state, step), jax.random.split(key, steps))[0]

    return jax.jit(rollout)


def env_only_rate(env_config: EnvConfig, num_envs: int, steps: int, repeats: int) -> float:
    """Environment steps per second under random valid actions (jit, vmap over envs, scan)."""
    env = make_env(env_config)
    rollout = random_rollout(env, num_envs, steps)
    state, step = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), num_envs))
    jax.block_until_ready(rollout(state, step, jax.random.PRNGKey(1)))
    start = time.perf_counter()
    for r in range(repeats):
        jax.block_until_ready(rollout(state, step, jax.random.PRNGKey(r + 2)))
    return num_envs * steps * repeats / (time.perf_counter() - start)


def bench_env(args: Any) -> list[dict[str, Any]]:
    """Rows of ``bench env``: environment-alone rates; LBF under both rule sets."""
    rows: list[dict[str, Any]] = []
    for env_id in args.envs or DEFAULT_TRAIN_ENVS:
        variants = [EnvConfig(id=env_id)]
        if env_id.startswith("lbf:"):
            variants = [EnvConfig(id=env_id, lbf_rules=r) for r in ("lbforaging", "jumanji")]
        rates = [env_only_rate(v, args.num_envs, args.steps, args.repeats) for v in variants]
        for variant, rate in zip(variants, rates, strict=True):
            row = {
                "env": env_id,
                "num_envs": args.num_envs,
                "steps_per_second": round(rate, 1),
                "ratio_to_first": round(rate / rates[0], 3),
            }
            if env_id.startswith("lbf:"):
                row["lbf_rules"] = variant.lbf_rules
            rows.append(row)
    return rows
