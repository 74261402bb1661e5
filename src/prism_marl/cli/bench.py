"""``prism-marl bench train|env``: the flags; the benchmarks themselves are ``prism_marl.bench``."""

from __future__ import annotations

import argparse
from typing import Any

from prism_marl.algos import ALGORITHMS
from prism_marl.bench import DEFAULT_TRAIN_ENVS
from prism_marl.bench.layers import DEFAULT_AGENTS, DEFAULT_BATCH, DEFAULT_WIDTHS
from prism_marl.bench.scale import DEFAULT_AGENTS as SCALE_AGENTS
from prism_marl.cli.args import positive_int
from prism_marl.presets import PRESETS
from prism_marl.sharing import STRATEGIES


def add_bench_command(commands: Any) -> None:
    """Add ``bench`` and its flags to the top-level sub-parsers ``commands``."""
    bench = commands.add_parser(
        "bench",
        help="throughput: training per strategy (ratios to FuPS and to the environment "
        "alone), environments alone, or one layer per strategy (docs/benchmarks.md)",
    )
    bench.add_argument(
        "what",
        choices=["train", "env", "layers", "scale"],
        help="train: full training chunks per strategy; env: environments under random "
        "actions; layers: one agent-indexed layer per strategy, forward and backward; scale: "
        "memory, checkpoint bytes and speed of every strategy as the number of agents grows",
    )
    bench.add_argument(
        "--envs",
        nargs="+",
        metavar="ID",
        help=f"environment ids (default: the preset's, else {' '.join(DEFAULT_TRAIN_ENVS)})",
    )
    bench.add_argument(
        "--algos",
        nargs="+",
        choices=list(ALGORITHMS),
        metavar="NAME",
        help="algorithms (default: the preset's, else mappo)",
    )
    bench.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="bench train: time with this training preset's algorithm settings (e.g. "
        "matd3-mabrax's batch of 1000) instead of the algorithm's defaults",
    )
    bench.add_argument(
        "--strategies",
        nargs="+",
        choices=list(STRATEGIES),
        metavar="NAME",
        help="strategies to time (FuPS is always added as the reference; default: all seven "
        "for layers and on LBF, fups nops prism on SMAX and MaBrax)",
    )
    bench.add_argument(
        "--prism-ranks",
        type=positive_int,
        nargs="+",
        metavar="R",
        help="bench train: also time Prism at these spectral ranks (one row each, its rank "
        "in the rank column; the --strategies rows keep their defaults: Prism full rank)",
    )
    bench.add_argument("--num-seeds", type=positive_int, default=3, help="seeds vmapped")
    bench.add_argument(
        "--updates", type=positive_int, help="updates per chunk (default: 5; scale: 1)"
    )
    bench.add_argument("--repeats", type=positive_int, default=4, help="timed chunks")
    bench.add_argument(
        "--num-envs",
        type=positive_int,
        help="parallel environments (default: bench env 96; bench scale 2 per strategy)",
    )
    bench.add_argument("--steps", type=positive_int, default=256, help="bench env: steps")
    bench.add_argument(
        "--agents",
        type=positive_int,
        nargs="+",
        help=f"agent counts N (default: bench layers {' '.join(map(str, DEFAULT_AGENTS))}; "
        f"bench scale {' '.join(map(str, SCALE_AGENTS))})",
    )
    bench.add_argument(
        "--widths",
        type=positive_int,
        nargs="+",
        default=list(DEFAULT_WIDTHS),
        help="bench layers: layer widths, inputs = outputs (default: 64 256)",
    )
    bench.add_argument(
        "--batch",
        type=positive_int,
        default=DEFAULT_BATCH,
        help="bench layers: agent-steps per call, a multiple of every N (default: 4096)",
    )
    bench.add_argument(
        "--plot",
        metavar="FILE.png",
        help="bench scale: also draw state bytes and chunk time against N into this PNG",
    )
    bench.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    bench.set_defaults(handler=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    """``prism-marl bench``."""
    from prism_marl.bench import run_bench

    return run_bench(args)
