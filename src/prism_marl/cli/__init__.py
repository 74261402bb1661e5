"""The ``prism-marl`` command line.

Bad input ends with one line on stderr naming the field and the valid values, exit code 2.
"""

# The docstring above is the top-level --help text. One module per command group:
# cli.resources, cli.bench, cli.train (train and eval); cli.args holds what they share. Only
# cli.__main__ imports this package back, so the modules form no cycle.

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from prism_marl.cli.args import (
    EXIT_BAD_INPUT,
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    OneLineParser,
)
from prism_marl.cli.bench import add_bench_command
from prism_marl.cli.report import add_report_command
from prism_marl.cli.resources import add_resources_command
from prism_marl.cli.sweep import add_sweep_command
from prism_marl.cpu import tune_cpu
from prism_marl.errors import ConfigError, RunLockedError, TrainingDivergedError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_DIVERGED",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "build_parser",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command."""
    parser = OneLineParser(prog="prism-marl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    # train and eval build their own parsers (their flags depend on --sharing and --algo);
    # main() hands them the command line before this parser sees it.
    commands.add_parser("train", help="train a sharing strategy with any algorithm (see train -h)")
    commands.add_parser("eval", help="evaluation (and a GIF) of a trained run (eval -h)")
    add_resources_command(commands)
    add_bench_command(commands)
    add_sweep_command(commands)
    add_report_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; tunes the process for CPU first (``tune_cpu``)."""
    # Before any computation, so that XLA's backend starts with these settings. Nothing the
    # CLI imports at module level computes (tests/test_cpu.py); environments import later.
    tune_cpu()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "train":
            from prism_marl.cli.train import run_train

            return run_train(argv[1:])
        if argv and argv[0] == "eval":
            from prism_marl.cli.train import run_eval

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
    except RunLockedError as error:
        print(f"prism-marl: error: {error}", file=sys.stderr)
        return EXIT_LOCKED
    except KeyboardInterrupt:
        print("\nprism-marl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
