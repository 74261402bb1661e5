"""``prism-marl bench train``: throughput of full training per strategy.

Compiles each strategy's jitted training chunk (rollout plus update, vmapped over seeds, exactly
what ``prism-marl train`` runs), then times the chunks round-robin in one process so that
machine drift hits every strategy alike, and reports ratios to FuPS and to the environment alone
under random valid actions (the ceiling, ``bench.env``).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any

import jax

from prism_marl.bench.env import DEFAULT_TRAIN_ENVS, env_only_rate
from prism_marl.bench.flops import jaxpr_matmul_flops
from prism_marl.config import EnvConfig, RunConfig, default_algo_config
from prism_marl.errors import ConfigError
from prism_marl.presets import PRESETS
from prism_marl.sharing import STRATEGIES, Prism, SharingStrategy

# What ``bench train`` times when --strategies is not given. An LBF chunk compiles in seconds, so
# every strategy runs there; a SMAX or MaBrax chunk compiles in minutes, so those families time
# the reference, no sharing and Prism, which keeps the whole default run within 15 minutes on
# 2 cores (docs/benchmarks.md).
HEAVY_FAMILY_STRATEGIES = ("fups", "nops", "prism")


def default_strategies(env_id: str) -> list[str]:
    """The strategies ``bench train`` times on ``env_id`` without --strategies."""
    if env_id.startswith("lbf:"):
        return list(STRATEGIES)
    return list(HEAVY_FAMILY_STRATEGIES)


@dataclasses.dataclass
class _Timed:
    """One strategy's compiled chunk, its state and the seconds spent in timed calls."""

    chunk: Callable[[Any], Any]
    state: Any
    flops: int
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Rate:
    """One strategy's measured training rate."""

    steps_per_second: float
    """Environment steps per second, all seeds together."""
    flop_per_second: float
    """Matrix-product FLOPs per second, all seeds (``bench.flops``)."""
    flop_per_update: int
    """Matrix-product FLOPs of one update of every seed."""


def training_rates(
    config: RunConfig, strategies: dict[str, SharingStrategy], updates: int, repeats: int
) -> tuple[dict[str, Rate], int]:
    """Training rates of chunks of ``updates`` updates, per labelled strategy, round-robin.

    Returns the rates (keyed as ``strategies``) and the environment steps one update consumes
    per seed.
    """
    from prism_marl.programs import init_seeds, train_chunks
    from prism_marl.run import build_algorithm, seed_keys

    runs: dict[str, _Timed] = {}
    steps_per_update = 0
    for name, strategy in strategies.items():
        run = dataclasses.replace(config, sharing=strategy)
        algo = build_algorithm(run)
        steps_per_update = run.algo_config.steps_per_update
        state = init_seeds(algo)(seed_keys(run))
        # One trace serves both the FLOP count and the compile: tracing a SMAX or MaBrax chunk
        # takes seconds.
        traced = train_chunks(algo, updates).trace(state)
        chunk = traced.lower().compile()
        state, _ = chunk(state)  # warm up
        jax.block_until_ready(state)
        runs[name] = _Timed(chunk, state, jaxpr_matmul_flops(traced.jaxpr))
    for _ in range(repeats):
        for timed in runs.values():
            start = time.perf_counter()
            timed.state, metrics = timed.chunk(timed.state)
            jax.block_until_ready(metrics)
            timed.seconds += time.perf_counter() - start
    steps = steps_per_update * updates * repeats * config.num_seeds
    rates = {
        name: Rate(
            steps / timed.seconds, timed.flops * repeats / timed.seconds, timed.flops // updates
        )
        for name, timed in runs.items()
    }
    return rates, steps_per_update


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


def timed_strategies(names: list[str], prism_ranks: list[int]) -> dict[str, SharingStrategy]:
    """The strategies ``bench train`` times, by label.

    FuPS first (the reference), then ``names`` with their defaults, then Prism at each of
    ``prism_ranks`` (labelled ``prism@R``).
    """
    timed = {name: STRATEGIES[name]() for name in dict.fromkeys(["fups", *names])}
    timed.update({f"prism@{rank}": Prism(rank=rank) for rank in prism_ranks})
    return timed


def bench_train(args: Any) -> list[dict[str, Any]]:
    """Rows of ``bench train``: one per (env, algo, strategy); FuPS always comes first."""
    preset = PRESETS.get(args.preset or "", {})
    envs = args.envs or ([preset["env"]["id"]] if preset else list(DEFAULT_TRAIN_ENVS))
    algos = args.algos or [_preset_algo(preset)]
    rows: list[dict[str, Any]] = []
    for env_id in envs:
        strategies = timed_strategies(
            args.strategies or default_strategies(env_id), args.prism_ranks or []
        )
        for algo in algos:
            config = RunConfig(
                algo=algo,
                env=bench_env_config(env_id, args.preset),
                algo_config=bench_algo_config(algo, args.preset),
                num_seeds=args.num_seeds,
                total_steps=10**9,
            )
            try:
                rates, steps_per_update = training_rates(
                    config, strategies, args.updates, args.repeats
                )
            except ConfigError as error:  # e.g. QMIX on continuous actions
                print(f"skipped {algo} on {env_id}: {error}", file=sys.stderr)
                continue
            num_envs = getattr(config.algo_config, "num_envs", 1) * args.num_seeds
            env_rate = env_only_rate(config.env, num_envs, 128, args.repeats)
            # Off-policy updates take a fixed number of gradient steps (QMIX, MATD3).
            grad_steps = getattr(config.algo_config, "gradient_steps", None)
            for name, strategy in strategies.items():
                rate = rates[name].steps_per_second
                rows.append(
                    {
                        "algo": algo,
                        "env": env_id,
                        "preset": args.preset or "",
                        "strategy": strategy.name,
                        "rank": getattr(strategy, "rank", None),
                        "num_seeds": args.num_seeds,
                        "steps_per_second": round(rate, 1),
                        "ratio_to_fups": round(rate / rates["fups"].steps_per_second, 3),
                        "ratio_to_env_only": round(rate / env_rate, 3),
                        "env_only_steps_per_second": round(env_rate, 1),
                        "grad_steps_per_second_per_seed": None
                        if grad_steps is None
                        else round(rate / args.num_seeds / steps_per_update * grad_steps, 2),
                        "gflop_per_update": round(rates[name].flop_per_update / 1e9, 3),
                        "gflop_per_second": round(rates[name].flop_per_second / 1e9, 2),
                    }
                )
    return rows
