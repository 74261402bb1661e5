"""``prism-marl report RESULTS_DIR ... --out DIR``: report.md and figures from results files."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from prism_marl.cli.args import positive_int
from prism_marl.report import DEFAULT_AGENT_COUNTS
from prism_marl.report.stats import RESAMPLES


def add_report_command(commands: Any) -> None:
    """Register ``report`` and its flags."""
    report = commands.add_parser(
        "report",
        help="report.md and figures (Figures 2-5, tables, diversity) from results directories",
        description="Read results directories (a sweep's results/<experiment>-<scale>, a "
        "directory of runs, or one run directory) and write DIR/report.md with its PNG "
        "figures: learning curves, final-return tables with IQM and 95% bootstrap intervals, "
        "the aggregate over tasks with the probability of improvement, Figure 4's budgets, "
        "Figure 5's resources, the ablations, behavioural diversity, and every missing or "
        "unfinished run. Only results files are read.",
    )
    report.add_argument(
        "results", nargs="+", metavar="RESULTS_DIR", help="results or run directories to read"
    )
    report.add_argument("--out", required=True, metavar="DIR", help="where report.md goes")
    report.add_argument(
        "--resamples",
        type=positive_int,
        default=RESAMPLES,
        help=f"bootstrap resamples per interval (default: {RESAMPLES})",
    )
    report.add_argument(
        "--agents",
        type=positive_int,
        nargs="+",
        default=list(DEFAULT_AGENT_COUNTS),
        help="agent counts N of Figure 5 (default: 2 4 ... 1024)",
    )
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Write the report; print where it is."""
    from prism_marl.report import write_report

    command = ["prism-marl", "report", *args.results, "--out", args.out]
    if args.resamples != RESAMPLES:
        command += ["--resamples", str(args.resamples)]
    if tuple(args.agents) != DEFAULT_AGENT_COUNTS:
        command += ["--agents", *map(str, args.agents)]
    path = write_report(
        args.results,
        args.out,
        command=shlex.join(command),
        resamples=args.resamples,
        agent_counts=tuple(args.agents),
    )
    print(f"report: {path}")
    return 0
