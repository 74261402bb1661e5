"""The ``prism-marl`` command line.

Bad input ends with one line on stderr naming the field and the valid values, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from prism_marl.bench import DEFAULT_TRAIN_ENVS
from prism_marl.config import ALGORITHMS
from prism_marl.errors import ConfigError, TrainingDivergedError
from prism_marl.presets import PRESETS
from prism_marl.sharing import STRATEGIES

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a single line (no usage dump, no traceback)."""

    def error(self, message: str) -> NoReturn:
        """Print ``prism-marl: error: <message>`` and exit 2."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    """Argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """Argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def png_path(text: str) -> str:
    """Argparse type: a path ending in .png."""
    if not text.lower().endswith(".png"):
        raise argparse.ArgumentTypeError(f"must be a .png file, got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command."""
    parser = OneLineParser(prog="prism-marl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    commands.add_parser("train", help="train a sharing strategy with MAPPO or IPPO (see train -h)")
    commands.add_parser("eval", help="greedy evaluation (and a GIF) of a trained run (eval -h)")
    res = commands.add_parser(
        "resources",
        help="parameters, additional resource, optimizer bytes and FLOPs vs number of agents",
        description="Resource accounting of every sharing strategy (the paper's Figure 5), or "
        "with --budget the hidden width that matches a parameter budget (Figure 4).",
    )
    res.add_argument(
        "--input-size",
        type=positive_int,
        default=12,
        help="observation features (default: 12, lbf:8x8-2p-2f-coop)",
    )
    res.add_argument(
        "--hidden-sizes",
        type=positive_int,
        nargs="+",
        default=[64, 64],
        help="hidden widths (default: 64 64); with --gru: input layer, GRU",
    )
    res.add_argument(
        "--output-size", type=positive_int, default=6, help="actions (default: 6, LBF)"
    )
    res.add_argument("--gru", action="store_true", help="dense -> GRU -> head instead of an MLP")
    res.add_argument(
        "--agents",
        type=positive_int,
        nargs="+",
        default=[2**k for k in range(1, 11)],
        help="agent counts N (default: 2 4 ... 1024)",
    )
    res.add_argument(
        "--strategies",
        nargs="+",
        default=list(STRATEGIES),
        choices=list(STRATEGIES),
        metavar="NAME",
        help=f"strategies to count (default: all of {', '.join(STRATEGIES)})",
    )
    res.add_argument(
        "--seps-clusters",
        type=positive_int,
        default=3,
        help="clusters assumed for SePS, capped at N (default: 3)",
    )
    res.add_argument(
        "--json", action="store_true", help="print a JSON list of rows instead of a table"
    )
    res.add_argument(
        "--plot", type=png_path, metavar="FILE.png", help="also draw Figure 5 to this PNG"
    )
    res.add_argument(
        "--budget",
        metavar="full|half|N",
        help="print, per strategy and N, the hidden width whose parameter count is "
        "nearest NoPS's (full), half of it (half) or N parameters",
    )
    res.set_defaults(handler=run_resources)
    bench = commands.add_parser(
        "bench",
        help="throughput: training per strategy (ratios to FuPS and to the environment "
        "alone) or environments alone (docs/benchmarks.md)",
    )
    bench.add_argument(
        "what",
        choices=["train", "env"],
        help="train: full training chunks per strategy; env: environments under random actions",
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
        default=list(STRATEGIES),
        choices=list(STRATEGIES),
        metavar="NAME",
        help="strategies to time (FuPS is always added as the reference)",
    )
    bench.add_argument("--num-seeds", type=positive_int, default=3, help="seeds vmapped")
    bench.add_argument("--updates", type=positive_int, default=5, help="updates per chunk")
    bench.add_argument("--repeats", type=positive_int, default=4, help="timed chunks")
    bench.add_argument(
        "--num-envs", type=positive_int, default=96, help="bench env: parallel environments"
    )
    bench.add_argument("--steps", type=positive_int, default=256, help="bench env: steps")
    bench.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    bench.set_defaults(handler=run_bench_command)
    return parser


def run_bench_command(args: argparse.Namespace) -> int:
    """``prism-marl bench``."""
    from prism_marl.bench import run_bench

    return run_bench(args)


def run_resources(args: argparse.Namespace) -> int:
    """``prism-marl resources``."""
    from prism_marl.resources import NetworkShape, budget_target, measure, solve_width

    shape = NetworkShape(args.input_size, tuple(args.hidden_sizes), args.output_size, args.gru)
    strategies = [STRATEGIES[name]() for name in args.strategies]
    if args.budget is not None:
        return print_budget(args, shape, strategies, budget_target, solve_width)
    rows = [
        measure(strategy, shape, n, seps_clusters=args.seps_clusters)
        for strategy in strategies
        for n in args.agents
    ]
    if args.plot:
        from prism_marl.analysis.figures import plot_resources

        plot_resources(rows, args.plot)
    if args.json:
        print(json.dumps([row._asdict() for row in rows], indent=1))
        return 0
    header = f"{'strategy':<13}{'N':>6}{'parameters':>13}{'additional':>13}"
    print(header + f"{'overhead':>10}{'adam bytes':>13}{'flops/agent':>13}")
    for row in rows:
        print(
            f"{row.strategy:<13}{row.num_agents:>6}{row.parameters:>13,}{row.additional:>13,}"
            f"{row.normalized_overhead:>10.4f}{row.optimizer_bytes:>13,}{row.flops:>13,.0f}"
        )
    if args.plot:
        print(f"figure: {args.plot}")
    return 0


def print_budget(args, shape, strategies, budget_target, solve_width) -> int:
    """Widths matching the parameter budget, one line per strategy and N."""
    results = []
    for n in args.agents:
        target = budget_target(args.budget, shape, n)
        for strategy in strategies:
            width, count = solve_width(strategy, shape, n, target, seps_clusters=args.seps_clusters)
            results.append(
                {
                    "strategy": strategy.name,
                    "num_agents": n,
                    "target": target,
                    "width": width,
                    "parameters": count,
                }
            )
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"{'strategy':<13}{'N':>6}{'target':>13}{'width':>7}{'parameters':>13}")
    for r in results:
        print(
            f"{r['strategy']:<13}{r['num_agents']:>6}{r['target']:>13,}{r['width']:>7}"
            f"{r['parameters']:>13,}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "train":
            from prism_marl.cli_train import run_train

            return run_train(argv[1:])
        if argv and argv[0] == "eval":
            from prism_marl.cli_train import run_eval

            return run_eval(argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        return args.handler(args)
    except ConfigError as error:
        print(f"prism-marl: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingDivergedError as error:
        print(f"\nprism-marl: training stopped: {error}", file=sys.stderr)
        return EXIT_DIVERGED


if __name__ == "__main__":
    sys.exit(main())
