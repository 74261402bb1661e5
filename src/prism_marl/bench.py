"""``prism-marl bench``: throughput of full training per strategy and of the environment alone.

``bench train`` compiles each strategy's jitted training chunk (rollout plus update, vmapped
over seeds, exactly what ``prism-marl train`` runs), then times the chunks round-robin in one
process so that machine drift hits every strategy alike, and reports ratios to FuPS and to the
environment alone under random valid actions (the ceiling). ``bench env`` times environments
alone, LBF under both rule sets side by side.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from prism_marl.config import EnvConfig, RunConfig, default_algo_config
from prism_marl.envs import make_env
from prism_marl.envs.base import MultiAgentEnv
from prism_marl.errors import ConfigError
from prism_marl.presets import PRESETS
from prism_marl.sharing import STRATEGIES

DEFAULT_TRAIN_ENVS = ("lbf:8x8-2p-2f-coop", "smax:smacv2_5_units", "mabrax:ant_4x2")


def random_actions(env: MultiAgentEnv, key: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Uniformly random valid actions for a batch: [E, N] integers or [E, N, A] in the box."""
    spec = env.spec
    if spec.action_kind == "discrete":
        return jax.random.categorical(key, jnp.where(action_mask, 0.0, -1e9))
    box = jax.random.uniform(
        key, action_mask.shape, minval=spec.action_low, maxval=spec.action_high
    )
    return jnp.where(action_mask, box, 0.0)


def env_only_rate(env_config: EnvConfig, num_envs: int, steps: int, repeats: int) -> float:
    """Environment steps per second under random valid actions (jit, vmap over envs, scan)."""
    env = make_env(env_config)

    @jax.jit
    def rollout(state: Any, step: Any, key: jax.Array) -> Any:
        def body(carry: Any, k: jax.Array) -> tuple[Any, None]:
            state, step = carry
            act_key, step_key = jax.random.split(k)
            actions = random_actions(env, act_key, step.action_mask)
            return jax.vmap(env.step)(jax.random.split(step_key, num_envs), state, actions), None

        return jax.lax.scan(body, (state, step), jax.random.split(key, steps))[0]

    state, step = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), num_envs))
    jax.block_until_ready(rollout(state, step, jax.random.PRNGKey(1)))
    start = time.perf_counter()
    for r in range(repeats):
        jax.block_until_ready(rollout(state, step, jax.random.PRNGKey(r + 2)))
    return num_envs * steps * repeats / (time.perf_counter() - start)


@dataclasses.dataclass
class _Timed:
    """One strategy's compiled chunk, its state and the seconds spent in timed calls."""

    chunk: Callable[[Any], Any]
    state: Any
    seconds: float = 0.0


def training_rates(
    config: RunConfig, strategies: list[str], updates: int, repeats: int
) -> tuple[dict[str, float], int]:
    """Environment steps per second (all seeds) of training chunks, per strategy.

    Returns the rates and the environment steps one update consumes per seed.
    """
    from prism_marl.programs import init_seeds, train_chunks
    from prism_marl.run import build_algorithm, seed_keys

    runs: dict[str, _Timed] = {}
    steps_per_update = 0
    for name in strategies:
        run = dataclasses.replace(config, sharing=STRATEGIES[name]())
        algo = build_algorithm(run)
        steps_per_update = run.algo_config.steps_per_update
        state = init_seeds(algo)(seed_keys(run))
        chunk = train_chunks(algo, updates)
        state, _ = chunk(state)  # compile and warm up
        jax.block_until_ready(state)
        runs[name] = _Timed(chunk, state)
    for _ in range(repeats):
        for timed in runs.values():
            start = time.perf_counter()
            timed.state, metrics = timed.chunk(timed.state)
            jax.block_until_ready(metrics)
            timed.seconds += time.perf_counter() - start
    steps = steps_per_update * updates * repeats * config.num_seeds
    return {name: steps / timed.seconds for name, timed in runs.items()}, steps_per_update


def _preset_algo(preset: dict[str, Any]) -> str:
    return str(preset.get("run", {}).get("algo", "mappo"))


def bench_algo_config(algo: str, preset_name: str | None) -> Any:
    """``algo``'s defaults, with a preset's algorithm settings when the preset trains ``algo``."""
    config = default_algo_config(algo)
    preset = PRESETS.get(preset_name or "", {})
    if _preset_algo(preset) != algo:
        return config
    return dataclasses.replace(config, **preset.get("algo", {}))


def bench_env_config(env_id: str, preset_name: str | None) -> EnvConfig:
    """``env_id`` with a preset's environment switches when the preset trains on ``env_id``."""
    fields = PRESETS.get(preset_name or "", {}).get("env", {})
    if fields.get("id") != env_id:
        return EnvConfig(id=env_id)
    return dataclasses.replace(EnvConfig(), **fields)


def bench_train(args: Any) -> list[dict[str, Any]]:
    """Rows of ``bench train``: one per (env, algo, strategy)."""
    strategies = list(dict.fromkeys(["fups", *args.strategies]))
    preset = PRESETS.get(args.preset or "", {})
    envs = args.envs or ([preset["env"]["id"]] if preset else list(DEFAULT_TRAIN_ENVS))
    algos = args.algos or [_preset_algo(preset)]
    rows: list[dict[str, Any]] = []
    for env_id in envs:
        for algo in algos:
            config = RunConfig(
                algo=algo,
                env=bench_env_config(env_id, args.preset),
                algo_config=bench_algo_config(algo, args.preset),
                num_seeds=args.num_seeds,
                total_steps=10**9,
            )
            try:
                rates, _ = training_rates(config, strategies, args.updates, args.repeats)
            except ConfigError as error:  # e.g. QMIX on continuous actions
                print(f"skipped {algo} on {env_id}: {error}", file=sys.stderr)
                continue
            num_envs = getattr(config.algo_config, "num_envs", 1) * args.num_seeds
            env_rate = env_only_rate(config.env, num_envs, 128, args.repeats)
            for name in strategies:
                rows.append(
                    {
                        "algo": algo,
                        "env": env_id,
                        "preset": args.preset or "",
                        "strategy": name,
                        "num_seeds": args.num_seeds,
                        "steps_per_second": round(rates[name], 1),
                        "ratio_to_fups": round(rates[name] / rates["fups"], 3),
                        "ratio_to_env_only": round(rates[name] / env_rate, 3),
                        "env_only_steps_per_second": round(env_rate, 1),
                    }
                )
    return rows


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


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    print("| " + " | ".join(columns) + " |")
    print(
        "|"
        + "|".join(
            "---" if c in ("algo", "env", "strategy", "lbf_rules") else "---:" for c in columns
        )
        + "|"
    )
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            cells.append(f"{value:,.0f}" if column.startswith("steps") else str(value))
        print("| " + " | ".join(cells) + " |")


def run_bench(args: Any) -> int:
    """``prism-marl bench train|env``: print a markdown table, or JSON rows with ``--json``."""
    if args.what == "train":
        rows = bench_train(args)
        columns = [
            "algo",
            "env",
            "strategy",
            "num_seeds",
            "steps_per_second",
            "ratio_to_fups",
            "ratio_to_env_only",
        ]
    else:
        rows = bench_env(args)
        columns = ["env", "lbf_rules", "num_envs", "steps_per_second", "ratio_to_first"]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows, columns)
    return 0
