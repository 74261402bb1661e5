"""One attempt at one run: ``prism-marl train --resume RUN_DIR`` in its own process.

Every attempt, first or retry, resumes: the run directory holds the run's ``config.json``
from the start, so a fresh run and an interrupted one take the same path (from the last
checkpoint, or from scratch when there is none). The child process runs under the stall
watchdog (``--stall-timeout``), holds the run directory's lock (``prism_marl.runlock``) and is
killed if the process that launched it dies (``watchdog.die_with_parent``), so a killed sweep
or Ray worker leaves no orphan training on.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from prism_marl.results import write_json
from prism_marl.watchdog import PARENT_PID_VARIABLE

LOG_FILE = "train.log"
EXIT_LOCKED = 5  # prism_marl.cli.args.EXIT_LOCKED, without importing the CLI in workers


@dataclasses.dataclass(frozen=True)
class Job:
    """What a worker needs to run one attempt: picklable, no jax objects."""

    run_id: str
    config: dict[str, Any]
    """The run's ``config.json`` contents."""
    stall_timeout: float = 300.0
    xla_cache: str | None = None
    """Persistent compilation cache shared by the sweep's processes (None: off)."""
    lock_wait: float = 120.0
    """Seconds to keep retrying while another process holds the run's lock (a dying orphan)."""
    train_flags: tuple[str, ...] = ()
    """Further ``prism-marl train`` flags that are not the run's config (W&B's)."""


class Outcome(NamedTuple):
    """How an attempt ended."""

    run_id: str
    exit_code: int
    wall_seconds: float
    last_error: str
    files: dict[str, bytes] | None = None
    """The run directory's files, when the worker's directory is not the driver's."""


def _last_line(path: Path, offset: int) -> str:
    """The last non-empty line written to ``path`` after ``offset``."""
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            text = stream.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def launch(job: Job, run_dir: str | Path) -> Outcome:
    """Run one attempt of ``job`` in ``run_dir`` and wait for it; output goes to train.log."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.json").exists():
        write_json(run_dir / "config.json", {**job.config, "run_dir": str(run_dir)})
    command = [
        sys.executable,
        "-m",
        "prism_marl.cli",
        "train",
        "--resume",
        str(run_dir),
        "--no-progress",
        "--stall-timeout",
        str(job.stall_timeout),
        *job.train_flags,
    ]
    # The child arms PR_SET_PDEATHSIG itself (watchdog.die_with_parent): a preexec_fn would
    # run Python between fork and exec in a process whose other threads (jax's, the sweep's)
    # may hold locks, which can deadlock the child.
    env = {**os.environ, PARENT_PID_VARIABLE: str(os.getpid())}
    if job.xla_cache:
        env["PRISM_MARL_XLA_CACHE"] = job.xla_cache
    log = run_dir / LOG_FILE
    start = time.monotonic()
    deadline = start + job.lock_wait
    while True:
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as stream:
            stream.write(f"\n=== attempt at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            stream.flush()
            code = subprocess.run(
                command,
                stdout=stream,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            ).returncode
        if code != EXIT_LOCKED or time.monotonic() > deadline:
            break
        time.sleep(2.0)
    last = "" if code == 0 else _last_line(log, offset)
    return Outcome(job.run_id, code, time.monotonic() - start, last)


def collect_files(run_dir: str | Path) -> dict[str, bytes]:
    """Every file under ``run_dir`` (relative path -> contents), the lock file excepted."""
    run_dir = Path(run_dir)
    return {
        str(path.relative_to(run_dir)): path.read_bytes()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def write_files(run_dir: str | Path, files: dict[str, bytes]) -> None:
    """Put files returned by ``collect_files`` under ``run_dir``."""
    for name, data in files.items():
        path = Path(run_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


__all__ = ["Job", "Outcome", "collect_files", "launch", "write_files"]
