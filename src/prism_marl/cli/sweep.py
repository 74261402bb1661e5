"""``prism-marl sweep FILE``: run an experiment file's runs, locally or on a Ray cluster."""

from __future__ import annotations

import argparse
from typing import Any

from prism_marl.cli.args import non_negative_float, positive_int
from prism_marl.sweep.experiment import SCALES


def add_sweep_command(commands: Any) -> None:
    """Register ``sweep`` and its flags."""
    sweep = commands.add_parser(
        "sweep",
        help="run an experiment file (experiments/*.toml) unattended and resumably",
        description="Expand an experiment file into runs and train every one that has not "
        "finished, each in its own process (stall watchdog, run lock), retrying failures. Run "
        "it again to continue; RESULTS/index.jsonl lists every run's status.",
    )
    sweep.add_argument("file", help="experiment file, e.g. experiments/figure2_homogeneous.toml")
    sweep.add_argument(
        "--scale",
        choices=SCALES,
        default="quick",
        help="quick, full, or the fair protocol's confirmation on fresh seeds at the preset "
        "(confirm) and at each method's tuned setting (confirm-tuned); docs/experiments/"
        "protocol.md (default: quick)",
    )
    sweep.add_argument(
        "--only", metavar="PATTERN", help="runs whose id matches this glob (or contains it)"
    )
    sweep.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local processes or Ray tasks (default: local)",
    )
    sweep.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray: join this cluster (ray start --head prints it); default: start a local Ray",
    )
    sweep.add_argument("--workers", type=positive_int, default=1, help="runs at once (default: 1)")
    sweep.add_argument(
        "--results",
        metavar="DIR",
        help="results directory, shared by every node with Ray "
        "(default: results/<experiment>-<scale>)",
    )
    sweep.add_argument(
        "--dry-run", action="store_true", help="list the runs and their estimated time only"
    )
    sweep.add_argument(
        "--retries",
        type=int,
        default=2,
        help="further attempts for a failed or stalled run in this sweep (default: 2)",
    )
    sweep.add_argument(
        "--stall-timeout",
        type=non_negative_float,
        default=300.0,
        metavar="SECONDS",
        help="each run's stall watchdog (prism-marl train --stall-timeout; default: 300)",
    )
    sweep.add_argument(
        "--cpus-per-run",
        type=non_negative_float,
        default=2.0,
        help="Ray: CPUs each run reserves (default: 2)",
    )
    sweep.add_argument(
        "--no-shared-results",
        action="store_true",
        help="Ray: workers train in node-local directories and send finished runs' files back",
    )
    sweep.add_argument(
        "--no-xla-cache",
        action="store_true",
        help="do not share compiled programs between runs through RESULTS/.xla-cache "
        "(or $PRISM_MARL_XLA_CACHE when set)",
    )
    sweep.add_argument(
        "--reuse",
        metavar="DIR",
        action="append",
        default=[],
        help="copy a finished run of this results directory instead of training a planned "
        "run with the same config hash (repeatable; e.g. confirm-tuned's QMIX runs from "
        "results/<experiment>-confirm)",
    )
    from prism_marl.cli.train import add_wandb_flags

    add_wandb_flags(sweep, group_default="the sweep's name, <experiment>-<scale>")
    sweep.set_defaults(handler=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    """Build the options and run the sweep."""
    from prism_marl.cli.train import wandb_options
    from prism_marl.errors import ConfigError
    from prism_marl.sweep import SweepOptions, run_sweep

    if args.retries < 0:
        raise ConfigError(f"--retries: must be >= 0, got {args.retries}")
    options = SweepOptions(
        scale=args.scale,
        only=args.only,
        executor=args.executor,
        address=args.address,
        workers=args.workers,
        results=args.results,
        dry_run=args.dry_run,
        retries=args.retries,
        stall_timeout=args.stall_timeout,
        cpus_per_run=args.cpus_per_run,
        shared_results=not args.no_shared_results,
        xla_cache=not args.no_xla_cache,
        wandb=wandb_options(args),
        reuse=tuple(args.reuse),
    )
    return run_sweep(args.file, options)
