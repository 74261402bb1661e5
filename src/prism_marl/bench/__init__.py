"""Benchmarks: ``prism-marl bench train|env|layers|scale``, LBF measurements (``bench.lbf``).

``bench.train`` times full training per strategy and reports ratios to FuPS and to the
environment alone; ``bench.layers`` one agent-indexed layer per strategy against FuPS and the
FLOP model's floor; ``bench.env`` times environments alone (LBF under both rule sets side by
side) and holds what every benchmark shares (random actions, the jitted random rollout);
``bench.scale`` every strategy's memory, checkpoint bytes and speed as the number of agents
grows; ``bench.lbf`` measures LBF's rule sets and random-policy returns against lbforaging.
Results and the commands that produced them: docs/benchmarks.md and docs/lbf.md.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prism_marl.bench.env import DEFAULT_TRAIN_ENVS, bench_env, env_only_rate, random_actions
from prism_marl.bench.flops import matmul_flops
from prism_marl.bench.layers import DEFAULT_AGENTS, bench_layers
from prism_marl.bench.scale import DEFAULT_AGENTS as SCALE_AGENTS
from prism_marl.bench.scale import bench_scale, plot_scale
from prism_marl.bench.train import bench_train, training_rates
from prism_marl.errors import require
from prism_marl.sharing import STRATEGIES

__all__ = [
    "DEFAULT_TRAIN_ENVS",
    "bench_env",
    "bench_layers",
    "bench_train",
    "env_only_rate",
    "matmul_flops",
    "random_actions",
    "run_bench",
    "training_rates",
]


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    print("| " + " | ".join(columns) + " |")
    print(
        "|"
        + "|".join(
            "---" if c in ("algo", "env", "strategy", "lbf_rules", "fits") else "---:"
            for c in columns
        )
        + "|"
    )
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            if column.startswith("steps") and isinstance(value, float | int):
                cells.append(f"{value:,.0f}")
            elif column == "seconds":
                cells.append(f"{value * 1e3:.3f} ms")
            else:
                cells.append("" if value is None else str(value))
        print("| " + " | ".join(cells) + " |")


def _scale_cells(row: dict[str, Any]) -> dict[str, Any]:
    """A ``bench scale`` row with bytes in MiB and seconds in milliseconds, for the table."""
    cells = dict(row)
    for name in ("state", "over_fups", "peak", "checkpoint"):
        value = row.get(f"{name}_bytes")
        cells[f"{name}_mib"] = None if value is None else f"{value / 2**20:,.2f}"
    seconds = row.get("forward_seconds")
    cells["forward_ms"] = None if seconds is None else f"{seconds * 1e3:.2f}"
    return cells


def run_bench(args: Any) -> int:
    """``prism-marl bench train|env|layers|scale``: a markdown table, or JSON rows (``--json``)."""
    scale = args.what == "scale"
    args.agents = args.agents or list(SCALE_AGENTS if scale else DEFAULT_AGENTS)
    args.updates = args.updates or (1 if scale else 5)
    args.num_envs = args.num_envs or (2 if scale else 96)
    if scale:
        rows = bench_scale(
            args.agents,
            args.strategies or list(STRATEGIES),
            algo=(args.algos or ["mappo"])[0],
            num_envs=args.num_envs,
            updates=args.updates,
            repeats=args.repeats,
            # Each row as it is measured, so a long run shows progress and a crash loses none.
            report=lambda row: print(json.dumps(row), file=sys.stderr, flush=True),
        )
        if args.plot:
            plot_scale(rows, args.plot)
        columns = [
            "num_agents",
            "strategy",
            "per_agent_numbers",
            "state_mib",
            "over_fups_mib",
            "peak_mib",
            "checkpoint_mib",
            "steps_per_second",
            "ratio_to_fups",
            "forward_ms",
            "fits",
        ]
        table = [_scale_cells(row) for row in rows]
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            _print_table(table, columns)
        return 0
    if args.what == "layers":
        require(
            all(args.batch % n == 0 for n in args.agents),
            "batch",
            f"must be a multiple of every agent count {args.agents}, got {args.batch}",
        )
        rows = bench_layers(
            args.strategies or list(STRATEGIES),
            args.agents,
            args.widths,
            args.batch,
            rounds=args.repeats,
        )
        columns = [
            "strategy",
            "num_agents",
            "width",
            "rank",
            "seconds",
            "ratio_to_fups",
            "flop_floor",
        ]
    elif args.what == "train":
        rows = bench_train(args)
        columns = [
            "algo",
            "env",
            "strategy",
            "rank",
            "num_seeds",
            "steps_per_second",
            "ratio_to_fups",
            "ratio_to_env_only",
            "grad_steps_per_second_per_seed",
            "gflop_per_second",
        ]
    else:
        rows = bench_env(args)
        columns = ["env", "lbf_rules", "num_envs", "steps_per_second", "ratio_to_first"]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows, columns)
    return 0
