"""``prism-marl sweep``: an experiment file's runs, unattended, resumable, locally or on Ray.

The driver expands the file (``sweep.experiment``) into runs named from their method, backbone,
task, scale and a hash of their full config; skips the finished ones; runs the rest, each
attempt in its own training process (``sweep.launch``) on an executor (``sweep.executors``);
retries failed and stalled attempts up to a limit; and keeps ``RESULTS/index.jsonl``
(``sweep.index``) current after every change. A changed config is a new run id, so a run
directory never mixes two configs. Running the same command again continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from prism_marl.config import to_dict
from prism_marl.errors import ConfigError
from prism_marl.extras import import_extra
from prism_marl.results import write_json
from prism_marl.sweep.experiment import PlannedRun, hidden_width, load_experiment
from prism_marl.sweep.index import IndexEntry, load_index, save_index
from prism_marl.sweep.launch import Job, Outcome
from prism_marl.sweep.reuse import adopt, finished_runs

if TYPE_CHECKING:
    from prism_marl.loggers import WandbOptions

EXIT_STATUS = {0: "finished", 2: "failed", 3: "diverged", 4: "stalled", 5: "locked"}
FINAL = ("finished", "diverged")
"""Statuses never retried: a finished run, or one whose loss stopped being finite (it would
diverge again from the same checkpoint; its checkpoints are kept for inspection)."""

# Env steps per second (all seeds together) of the presets on a 2-core CPU, and compile and
# evaluation seconds per run, for ``--dry-run``'s estimate until the results directory holds
# finished runs of the same algorithm and family. Measured 2026-12-02 with 3 seeds: MAPPO +
# Prism, preset lbf, 39,300 steps/s (107 s for a 1M-step run); preset smax, 4,700 steps/s
# (404 s for 500k); MAPPO on hopper (the learning check), about 4,000; QMIX on LBF and MATD3 on
# MaBrax from docs/benchmarks.md. MaMuJoCo (MJX on CPU with the solver caps of decision 0044,
# 2026-12-07, machine shared): Figure 3's quick MAPPO runs on hopper (3 seeds, 100k steps) trained
# at 840-1,110 steps/s and spent about 360 s more in compiles and evaluations (4 episodes per
# point, 40 final); MATD3 on hopper, one seed, 74-157 steps/s.
THROUGHPUT = {
    ("mappo", "lbf"): 39_000,
    ("mappo", "smax"): 4_700,
    ("mappo", "mabrax"): 4_000,
    ("qmix", "lbf"): 2_000,
    ("qmix", "smax"): 1_500,
    ("matd3", "mabrax"): 550,
    ("mappo", "mamujoco"): 1_000,
    ("matd3", "mamujoco"): 100,
}
COMPILE_SECONDS = {"lbf": 30.0, "smax": 60.0, "mabrax": 120.0, "mamujoco": 360.0}
SAME_ALGORITHM = {"ippo": "mappo", "vdn": "qmix"}


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """How ``prism-marl sweep`` runs an experiment file."""

    scale: str = "quick"
    only: str | None = None
    """Glob over run ids (a plain word matches ids that contain it)."""
    executor: str = "local"
    address: str | None = None
    workers: int = 1
    results: str | None = None
    """Results directory; default ``results/<experiment name>-<scale>``."""
    dry_run: bool = False
    retries: int = 2
    """Attempts after the first that a run gets in one sweep (failed, stalled, crashed)."""
    stall_timeout: float = 300.0
    cpus_per_run: float = 2.0
    """Ray: CPUs each run's task reserves."""
    shared_results: bool = True
    """Ray: workers write to the results directory (False: files come back to the driver)."""
    xla_cache: bool = True
    """Share compiled programs between the sweep's processes (RESULTS/.xla-cache)."""
    wandb: WandbOptions | None = None
    """Log every run to W&B; without a group, the group is the sweep's name."""
    reuse: tuple[str, ...] = ()
    """Results directories whose finished runs are copied in where a planned run's config
    hash equals theirs (``sweep.reuse``), instead of trained again."""


def select(runs: list[PlannedRun], only: str | None) -> list[PlannedRun]:
    """Runs whose id matches ``only`` (a glob; a plain word matches ids containing it)."""
    if not only:
        return runs
    pattern = only if any(c in only for c in "*?[") else f"*{only}*"
    return [run for run in runs if fnmatch.fnmatchcase(run.run_id, pattern)]


def estimate_seconds(run: PlannedRun, measured: dict[tuple[str, str], float]) -> float:
    """Expected wall seconds: steps of all seeds at the (measured or tabled) rate, plus compiles."""
    family = run.task.split(":", 1)[0]
    algo = SAME_ALGORITHM.get(run.config.algo, run.config.algo)
    rate = measured.get((algo, family)) or THROUGHPUT.get((algo, family), 5_000)
    steps = run.config.total_steps * run.config.num_seeds
    return steps / rate + COMPILE_SECONDS.get(family, 60.0)


def measured_rates(results: Path) -> dict[tuple[str, str], float]:
    """Median steps/s (all seeds) of finished runs in ``results``, per (algorithm, family)."""
    rates: dict[tuple[str, str], list[float]] = {}
    for summary_path in results.glob("*/summary.json"):
        summary = json.loads(summary_path.read_text())
        if summary.get("steps_per_second"):
            algo = SAME_ALGORITHM.get(summary["algo"], summary["algo"])
            key = (algo, summary["env"].split(":", 1)[0])
            rates.setdefault(key, []).append(float(summary["steps_per_second"]))
    return {key: sorted(v)[len(v) // 2] for key, v in rates.items()}


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class SweepProgress:
    """One line for the whole sweep: done/total, failures, running, time left."""

    def __init__(self, name: str, total: int, stream: TextIO):
        self.name, self.total, self.stream = name, total, stream
        self.interactive = stream.isatty()
        self._last = ""

    def show(self, done: int, failed: int, running: int, left_seconds: float | None) -> None:
        width = 24
        filled = int(width * done / max(self.total, 1))
        left = "?" if left_seconds is None else _duration(left_seconds)
        line = (
            f"sweep {self.name} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
            f"done, {failed} failed, {running} running, ~{left} left"
        )
        if line == self._last:
            return
        self._last = line
        if self.interactive:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive and self._last:
            self.stream.write("\n")
            self.stream.flush()


def dry_run(
    runs: list[PlannedRun], results: Path, out: TextIO, reusable: dict[str, Path] | None = None
) -> int:
    """List the runs with their steps and estimated wall time; returns 0.

    A run that ``--reuse`` would copy (its config hash in ``reusable``) shows as ``reused``
    and adds no time.
    """
    measured = measured_rates(results)
    index = load_index(results)
    total = 0.0
    width = max((len(r.run_id) for r in runs), default=10)
    out.write(
        f"{'run':<{width}}  {'seeds':>5}  {'steps/seed':>11}  {'width':>5}  {'estimate':>8}  "
        "status\n"
    )
    for run in runs:
        seconds = estimate_seconds(run, measured)
        entry = index.get(run.run_id)
        status: str = entry.status if entry else "new"
        if status != "finished" and run.config_hash in (reusable or {}):
            status = "reused"
        if status not in ("finished", "reused"):
            total += seconds
        out.write(
            f"{run.run_id:<{width}}  {run.config.num_seeds:>5}  {run.config.total_steps:>11,}  "
            f"{hidden_width(run.config):>5}  {_duration(seconds):>8}  {status}\n"
        )
    basis = "finished runs' rates" if measured else "sweep.THROUGHPUT's rates"
    out.write(f"{len(runs)} runs; about {_duration(total)} left on one worker ({basis})\n")
    return 0


def _make_executor(options: SweepOptions, results: Path) -> Any:
    from prism_marl.sweep.executors import LocalExecutor, RayExecutor

    if options.executor == "ray":
        return RayExecutor(
            results,
            options.workers,
            address=options.address,
            num_cpus=options.cpus_per_run,
            shared=options.shared_results,
        )
    return LocalExecutor(results, options.workers)


def _record_outcome(entry: IndexEntry, outcome: Outcome, results: Path) -> None:
    entry.attempts += 1
    entry.wall_seconds = round(entry.wall_seconds + outcome.wall_seconds, 1)
    entry.exit_code = outcome.exit_code
    entry.last_error = outcome.last_error
    status = EXIT_STATUS.get(outcome.exit_code, "failed")
    if status == "finished" and not (results / entry.run_id / "summary.json").exists():
        status, entry.last_error = "failed", "exit 0 without summary.json"
    entry.status = status  # type: ignore[assignment]


def _xla_cache(results: Path) -> str:
    """The compilation cache the runs share: the caller's PRISM_MARL_XLA_CACHE, if set."""
    return os.environ.get("PRISM_MARL_XLA_CACHE") or str((results / ".xla-cache").absolute())


def run_sweep(path: str, options: SweepOptions, out: TextIO | None = None) -> int:
    """Run (or continue) the sweep of experiment file ``path``; 0 when every run finished."""
    if options.executor == "ray" and not options.dry_run:
        import_extra("ray", "ray", "--executor ray")  # before planning, which takes a while
    experiment = load_experiment(path)
    runs = select(experiment.runs(options.scale), options.only)
    if not runs:
        raise ConfigError(f"--only: no run of {path} ({options.scale}) matches {options.only!r}")
    results = Path(options.results or f"results/{experiment.name}-{options.scale}")
    reusable = finished_runs(options.reuse)
    if options.dry_run:
        return dry_run(runs, results, out or sys.stdout, reusable)
    results.mkdir(parents=True, exist_ok=True)
    write_json(
        results / "sweep.json",
        {"experiment": experiment.name, "file": str(path), "scale": options.scale},
    )
    index = load_index(results)
    flags: tuple[str, ...] = ()
    if options.wandb is not None:
        group = options.wandb.group or f"{experiment.name}-{options.scale}"
        flags = tuple(dataclasses.replace(options.wandb, group=group).flags())
    jobs: dict[str, Job] = {}
    for run in runs:
        entry = index.get(run.run_id)
        finished = (results / run.run_id / "summary.json").exists()
        if entry is None:
            entry = index[run.run_id] = IndexEntry(run.run_id, run.config_hash, origin=run.record())
        if not finished and run.config_hash in reusable:
            adopt(reusable[run.config_hash], results, run)
            entry.reused_from = str(reusable[run.config_hash])
            finished = True
        if finished:
            entry.status = "finished"
        if entry.status in FINAL:
            continue
        entry.status = "pending"
        jobs[run.run_id] = Job(
            run.run_id,
            to_dict(run.config),
            stall_timeout=options.stall_timeout,
            xla_cache=_xla_cache(results) if options.xla_cache else None,
            train_flags=flags,
        )
    save_index(results, index)
    return _drive(experiment.name, runs, jobs, index, options, results)


def _drive(
    name: str,
    runs: list[PlannedRun],
    jobs: dict[str, Job],
    index: dict[str, IndexEntry],
    options: SweepOptions,
    results: Path,
) -> int:
    """Run ``jobs`` on the executor until each finished or used its attempts."""
    ids = {run.run_id for run in runs}

    def estimates() -> dict[str, float]:
        rates = measured_rates(results)  # refined as runs finish
        return {run.run_id: estimate_seconds(run, rates) for run in runs}

    expected = estimates()
    queue = list(jobs)
    attempts = dict.fromkeys(jobs, 0)
    running: dict[Any, str] = {}
    progress = SweepProgress(name, len(runs), sys.stderr)
    if not queue:
        return _report(name, ids, index, results)
    executor = _make_executor(options, results)
    try:
        while queue or running:
            while queue and len(running) < executor.slots:
                run_id = queue.pop(0)
                attempts[run_id] += 1
                index[run_id].status = "running"
                running[executor.start(jobs[run_id])] = run_id
            save_index(results, index)
            for handle, outcome in executor.wait(list(running), timeout=2.0):
                run_id = running.pop(handle)
                _record_outcome(index[run_id], outcome, results)
                status = index[run_id].status
                # Bad input (exit 2) fails the same way every time; crashes and stalls may not.
                retry = status in ("failed", "stalled", "locked") and outcome.exit_code != 2
                if retry and attempts[run_id] <= options.retries:
                    queue.append(run_id)
                save_index(results, index)
                expected = estimates()
            _show(progress, index, ids, running, queue, expected, executor.slots)
    finally:
        progress.close()
        executor.close()
        for run_id in running.values():
            index[run_id].status = "pending"  # interrupted: the next sweep resumes it
        save_index(results, index)
    return _report(name, ids, index, results)


def _report(name: str, ids: set[str], index: dict[str, IndexEntry], results: Path) -> int:
    done = sum(index[i].status == "finished" for i in ids)
    sys.stderr.write(f"sweep {name}: {done}/{len(ids)} finished; index: {results}/index.jsonl\n")
    return 0 if done == len(ids) else 1


def _show(progress, index, ids, running, queue, estimates, slots) -> None:
    done = [i for i in ids if index[i].status == "finished"]
    failed = [i for i in ids if index[i].status in ("failed", "stalled", "diverged", "locked")]
    failed = [i for i in failed if i not in queue and i not in running.values()]
    todo = [i for i in ids if i not in done and i not in failed]
    progress.show(len(done), len(failed), len(running), sum(estimates[i] for i in todo) / slots)


__all__ = ["SweepOptions", "estimate_seconds", "run_sweep", "select"]
