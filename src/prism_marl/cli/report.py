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
        "unfinished run. Only results files are read. With --marl-eval, also (or only) merge "
        "the runs' marl_eval.json files into the one file marl-eval's tools read.",
    )
    report.add_argument(
        "results", nargs="+", metavar="RESULTS_DIR", help="results or run directories to read"
    )
    report.add_argument("--out", metavar="DIR", help="where report.md goes")
    report.add_argument(
        "--marl-eval",
        metavar="FILE",
        help="write the finished runs' evaluations to FILE in marl-eval's JSON format "
        "(env -> task -> algorithm -> run -> step; absolute metrics of the best policies)",
    )
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
    report.add_argument(
        "--tuning-preset",
        metavar="BACKBONE",
        help="apply the fair protocol's tuning selection (docs/experiments/protocol.md) with "
        "BACKBONE as the preset setting: a table per experiment and DIR/<group>-tuning-"
        "selection.json with each method's selected setting and the algorithm fields it changes",
    )
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Write the report and/or the marl-eval file; print where they are."""
    from prism_marl.errors import ConfigError
    from prism_marl.report import write_report
    from prism_marl.report.load import load_sources
    from prism_marl.report.marl_eval import check_file, write_marl_eval

    if not args.out and not args.marl_eval:
        raise ConfigError("--out: give --out DIR (the report), --marl-eval FILE, or both")
    # Everything is checked before anything is written.
    sources = load_sources(args.results)
    marl_eval = check_file(args.marl_eval) if args.marl_eval else None
    if args.out:
        command = ["prism-marl", "report", *args.results, "--out", args.out]
        if args.resamples != RESAMPLES:
            command += ["--resamples", str(args.resamples)]
        if tuple(args.agents) != DEFAULT_AGENT_COUNTS:
            command += ["--agents", *map(str, args.agents)]
        if args.tuning_preset:
            command += ["--tuning-preset", args.tuning_preset]
        path = write_report(
            args.results,
            args.out,
            command=shlex.join(command),
            resamples=args.resamples,
            agent_counts=tuple(args.agents),
            tuning_preset=args.tuning_preset,
        )
        print(f"report: {path}")
    if marl_eval is not None:
        merged = write_marl_eval(sources, marl_eval)
        print(f"marl-eval: {marl_eval} ({merged.runs} runs, {merged.seeds} seeds)")
    return 0
