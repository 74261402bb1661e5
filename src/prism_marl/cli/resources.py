"""``prism-marl resources``: parameters, additional resource, optimizer bytes and FLOPs vs N."""

from __future__ import annotations

import argparse
import json
from typing import Any

from prism_marl.cli.args import png_path, positive_int
from prism_marl.sharing import STRATEGIES


def add_resources_command(commands: Any) -> None:
    """Add ``resources`` and its flags to the top-level sub-parsers ``commands``."""
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


def run_resources(args: argparse.Namespace) -> int:
    """``prism-marl resources``."""
    from prism_marl.resources import NetworkShape, budget_target, measure, solve_width

    shape = NetworkShape(args.input_size, tuple(args.hidden_sizes), args.output_size, args.gru)
    strategies = [STRATEGIES[name]() for name in args.strategies]
    if args.budget is not None:
        return print_budget(args, shape, strategies, budget_target, solve_width)
    rows = [
        measure(strategy, shape, n, groups=args.seps_clusters)
        for strategy in strategies
        for n in args.agents
    ]
    if args.plot:
        from prism_marl.report.run_figures import plot_resources

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
            width, count = solve_width(strategy, shape, n, target, groups=args.seps_clusters)
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
