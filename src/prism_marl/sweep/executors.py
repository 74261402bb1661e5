"""Where a sweep's attempts run: threads of this process (``local``) or Ray tasks (``ray``).

Both start ``launch.launch`` for a job and report ``Outcome``s as attempts end; the driver
decides what to retry. Each attempt is its own training process either way, so a crash or a
stall ends one attempt, never the sweep.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Protocol

from prism_marl.extras import import_extra
from prism_marl.sweep.launch import Job, Outcome, collect_files, launch, write_files


class Executor(Protocol):
    """Starts attempts and reports the ones that ended."""

    slots: int
    """Attempts that may run at once."""

    def start(self, job: Job) -> Any:
        """Start one attempt; returns a handle for ``wait``."""
        ...

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, Outcome]]:
        """The attempts among ``handles`` that ended within ``timeout`` seconds."""
        ...

    def close(self) -> None:
        """Release the executor's resources."""
        ...


class LocalExecutor:
    """Attempts as child processes of this one, ``workers`` at a time."""

    def __init__(self, results: Path, workers: int):
        """Run directories go under ``results``."""
        self.results = results
        self.slots = workers
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, "prism-marl-sweep")

    def start(self, job: Job) -> concurrent.futures.Future[Outcome]:
        return self._pool.submit(launch, job, self.results / job.run_id)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, Outcome]]:
        done, _ = concurrent.futures.wait(
            handles, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
        )
        return [(handle, handle.result()) for handle in done]

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def ray_attempt(job: Job, results: str | None) -> Outcome:
    """A Ray task's body: one attempt, in the shared results directory.

    When ``results`` is None the attempt runs in a node-local directory whose files come back
    with the outcome.
    """
    if results is not None:
        return launch(job, Path(results) / job.run_id)
    scratch = Path(tempfile.mkdtemp(prefix="prism-marl-run-"))
    try:
        outcome = launch(job, scratch / job.run_id)
        return outcome._replace(files=collect_files(scratch / job.run_id))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class RayExecutor:
    """Attempts as Ray tasks of ``num_cpus`` each, on a cluster (``address``) or a local Ray.

    With ``shared`` the workers write to ``results`` directly (a path every node reaches), and
    a task retried after its worker died resumes from the run's last checkpoint. Without it a
    finished attempt's files come back to the driver, which writes them under ``results``; a
    retried task then starts over on its node.
    """

    def __init__(
        self,
        results: Path,
        workers: int,
        *,
        address: str | None = None,
        num_cpus: float = 2.0,
        shared: bool = True,
        worker_restarts: int = 3,
    ):
        """Join the cluster at ``address`` (or start a local Ray, unless one is running)."""
        ray: Any = import_extra("ray", "ray", "--executor ray")
        self._ray = ray
        self.results = results
        self.slots = workers
        self.shared = shared
        self._started_here = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if not address:
                kwargs["num_cpus"] = os.cpu_count() or 1
            with warnings.catch_warnings():
                # Planning built environments, so XLA's threads run here, and jax warns of a
                # deadlock at every fork. Ray starts its processes by fork and exec with a
                # preexec_fn that only blocks SIGINT and calls prctl through a handle it
                # resolved before forking: nothing in the child waits on another thread.
                warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
                ray.init(address=address, **kwargs)
            self._started_here = True
        # max_retries re-runs a task whose worker process died (killed, node lost); the
        # driver itself retries attempts that ended with a failing exit code.
        self._remote = ray.remote(ray_attempt).options(
            num_cpus=num_cpus, max_retries=worker_restarts, retry_exceptions=False
        )

    def start(self, job: Job) -> Any:
        where = str(self.results.absolute()) if self.shared else None
        return self._remote.remote(job, where)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, Outcome]]:
        ready, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        ended = []
        for handle in ready:
            try:
                outcome: Outcome = self._ray.get(handle)
            except self._ray.exceptions.RayError as error:
                # The worker died more often than it may be restarted: a failed attempt.
                message = str(error).strip().splitlines()
                outcome = Outcome("", -1, 0.0, f"ray: {message[0] if message else error}")
            if outcome.files is not None and outcome.run_id:
                write_files(self.results / outcome.run_id, outcome.files)
                outcome = outcome._replace(files=None)
            ended.append((handle, outcome))
        return ended

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()


__all__ = ["Executor", "LocalExecutor", "RayExecutor", "ray_attempt"]
