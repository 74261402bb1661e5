"""A stall watchdog: ends a supervised run whose process stops using the CPU.

A hung jitted call (a deadlocked XLA thread pool, a wedged host callback) blocks the calling
thread inside native code, where no Python exception can reach it; the only way out is to end
the process. A healthy training process uses a core or more, a hung one almost nothing, so the
watchdog samples the process's CPU time (all threads) and, when it has grown by less than
``min_cpu_fraction`` of the wall time over the last ``seconds``, writes one line naming the
run's phase and how to resume it, and exits with ``EXIT_STALLED``.

It only ever runs when a caller asks for it (``prism-marl train`` does, ``--stall-timeout``;
``Trainer`` in-process takes a ``Watchdog`` argument) and never touches other processes. All
results files are written atomically and checkpoints are committed by orbax before the next
phase starts, so exiting at any point loses nothing that was checkpointed.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

EXIT_STALLED = 4
"""Exit status of a run the watchdog ended."""
PARENT_PID_VARIABLE = "PRISM_MARL_PARENT_PID"
"""Set by a launcher (the sweep) to its pid: the child ends when that process does."""
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """End this process when its launcher dies, if the launcher asked for it (Linux).

    Reads ``PRISM_MARL_PARENT_PID``; arms ``PR_SET_PDEATHSIG`` (SIGKILL from the kernel when
    the launching thread ends) and exits at once if the launcher already died before that.
    Elsewhere a no-op: the run directory's lock still keeps a retry off an orphan's run.
    """
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):
        os._exit(EXIT_STALLED)


@dataclasses.dataclass
class Watchdog:
    """Supervises the current process while ``watching()``; ``phase(name)`` labels the work."""

    seconds: float = 300.0
    """Stall time: CPU use below ``min_cpu_fraction`` for this long ends the process."""
    resume_hint: str = ""
    """What the stall message tells the user to run, e.g. ``prism-marl train --resume DIR``."""
    min_cpu_fraction: float = 0.01
    """CPU seconds per wall second under which the process counts as stalled."""
    exit: Callable[[int], None] = os._exit
    """How the process ends (``os._exit``: a hung native call cannot be unwound)."""
    current: str = "start-up"
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    @contextlib.contextmanager
    def watching(self) -> Iterator[Watchdog]:
        """Watch the process until the block ends."""
        self._stop.clear()
        thread = threading.Thread(target=self._watch, name="prism-marl-watchdog", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Label the work in the block (``init``, ``chunk 3``, ``evaluation``, ``checkpoint``)."""
        previous, self.current = self.current, name
        try:
            yield
        finally:
            self.current = previous

    def _watch(self) -> None:
        interval = min(5.0, self.seconds / 10)
        samples: collections.deque[tuple[float, float]] = collections.deque()
        while not self._stop.wait(interval):
            now, cpu = time.monotonic(), time.process_time()
            samples.append((now, cpu))
            while samples and now - samples[0][0] > self.seconds:
                oldest = samples.popleft()
                if cpu - oldest[1] < self.min_cpu_fraction * (now - oldest[0]):
                    self._stalled()
                    return

    def _stalled(self) -> None:
        sys.stderr.write(
            f"\nstalled: no progress for {self.seconds:g} s in phase {self.current} "
            f"(CPU idle; see docs/decisions/0014-no-batched-lapack.md); checkpoints are kept, "
            f"resume with: {self.resume_hint}\n"
        )
        sys.stderr.flush()
        self.exit(EXIT_STALLED)
