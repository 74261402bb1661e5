"""One process per run directory: an exclusive lock held while a run trains.

A sweep retries a run whose process it lost (a killed worker, a driver restarted while its
children ran on). Were the old process still alive, two processes would write one run's
checkpoints and metrics; the lock makes the second one stop with ``RunLockedError`` instead.
It is an ``flock`` on ``RUN_DIR/.lock``: the kernel drops it when the holding process ends,
however it ends, so a crash never leaves a stale lock, and Linux's NFS client maps it to a
POSIX lock that other nodes see (shared results directories of a Ray cluster).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from prism_marl.errors import RunLockedError

LOCK_FILE = ".lock"


def lock_holder(run_dir: str | Path) -> str:
    """``pid@host`` written by the process that last took the lock ("unknown" if none)."""
    try:
        return (Path(run_dir) / LOCK_FILE).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold ``RUN_DIR/.lock`` for the block; raise ``RunLockedError`` if another process has it.

    The directory must exist. The file keeps the holder's ``pid@host`` for the error message.
    """
    path = Path(run_dir) / LOCK_FILE
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"run-dir: {run_dir} is being trained by process {lock_holder(run_dir)}; "
                "wait for it to finish or end it, then resume"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}@{socket.gethostname()}\n".encode())
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(handle)
