"""What every ``prism-marl`` command shares: the one-line-error parser, argument types, exit codes.

Bad input ends with one line on stderr naming the field and the valid values, exit code 2.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_LOCKED = 5
EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT): 128 + the signal's number, as shells report it."""


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


def non_negative_int(text: str) -> int:
    """Argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
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
