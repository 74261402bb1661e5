"""The training loop: train chunk -> evaluate -> log -> checkpoint, for all seeds at once.

``init`` and ``train_chunk`` run under ``jit(vmap(...))`` over seeds (``prism_marl.programs``);
this host loop hands the results to the run's store (``store.py``) and its evaluator
(``evaluator.py``). A resumed run restores the last checkpoint, drops log lines written after
it, and continues with the same keys, so it ends with the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from prism_marl.algos import Algorithm
from prism_marl.best_policy import Best, BestCheckpoints, improve
from prism_marl.config import RunConfig, to_dict
from prism_marl.devices import place, seed_sharding
from prism_marl.envs.base import EnvSpec
from prism_marl.errors import ConfigError, TrainingDivergedError
from prism_marl.loggers import TensorBoardLog, WandbLog, WandbOptions
from prism_marl.memory import require_state_fits
from prism_marl.programs import donatable, init_seeds, train_chunks
from prism_marl.run.evaluator import Evaluator
from prism_marl.run.phase import Phase, Plan, seed_keys
from prism_marl.run.store import (
    Checkpoints,
    EvalPoint,
    RunStore,
    marl_eval_table,
    metric_records,
)
from prism_marl.watchdog import Watchdog


def non_finite_losses(metrics: dict[str, Any]) -> list[str]:
    """Names of loss metrics (``loss/*``) holding a NaN or infinity for any seed."""
    return sorted(
        name
        for name, value in metrics.items()
        if name.startswith("loss/") and not np.all(np.isfinite(np.asarray(value)))
    )


class Progress:
    """One terminal line: steps, steps per second, latest return and time left."""

    def __init__(self, total: int, num_seeds: int, enabled: bool):
        self.total, self.num_seeds, self.enabled = total, num_seeds, enabled
        self.start = time.time()

    def update(self, done: int, done_this_session: int, latest_return: float) -> None:
        """Redraw the line."""
        if not self.enabled:
            return
        elapsed = max(time.time() - self.start, 1e-9)
        rate = done_this_session / elapsed
        left = (self.total - done) / rate if rate > 0 else float("inf")
        all_seeds = rate * self.num_seeds
        width = 24
        filled = int(width * done / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        sys.stderr.write(
            f"\r[{bar}] {done:,}/{self.total:,} steps/seed | {all_seeds:,.0f} steps/s | "
            f"return {latest_return:.3f} | {left:,.0f}s left   "
        )
        sys.stderr.flush()

    def close(self) -> None:
        """End the line (once)."""
        if self.enabled:
            sys.stderr.write("\n")
            self.enabled = False


class Start(NamedTuple):
    """Where a training session starts."""

    chunk: int
    wall_before: float
    """Wall seconds the run trained in earlier sessions."""
    state: Any
    best: Best | None


@dataclasses.dataclass
class Session:
    """What one training session opened: checkpoints, best policies, loggers, progress line."""

    checkpoints: Checkpoints
    best: BestCheckpoints
    logs: list[Any]
    """TensorBoard's writer first, then W&B's run when the run logs to W&B."""
    progress: Progress


class Trainer:
    """Runs (or resumes) one RunConfig and writes its results files."""

    def __init__(
        self,
        config: RunConfig,
        *,
        resume: bool = False,
        progress: bool = True,
        watchdog: Watchdog | None = None,
        wandb: WandbOptions | None = None,
        devices: int | None = None,
    ):
        """Validate ``config`` and build its algorithm; nothing is written until ``run``.

        ``watchdog`` (opt-in) ends the process if the run stalls (``prism_marl.watchdog``).
        ``wandb`` (opt-in) logs the run to Weights & Biases as well (``prism_marl.loggers``).
        ``devices``: local devices the seeds are spread over (``prism_marl.devices``; None:
        as many as divide the seeds evenly).
        """
        self.sharding = seed_sharding(config.num_seeds, devices)
        self.store = RunStore(config.run_dir)
        self.plan = Plan.of(config)
        self.phase = Phase.first(config)  # validates the environment and algorithm
        self.watchdog = watchdog
        self.wandb = wandb
        self.progress = progress
        self.resume = resume
        self.stop_requested = False

    @classmethod
    def from_run_dir(
        cls,
        run_dir: str | Path,
        *,
        progress: bool = True,
        watchdog: Watchdog | None = None,
        field: str = "resume",
        wandb: WandbOptions | None = None,
        devices: int | None = None,
    ) -> Trainer:
        """A trainer that resumes the run stored in ``run_dir``.

        ``field`` names the argument in the error raised when ``run_dir`` holds no run.
        """
        return cls(
            RunStore(run_dir).read_config(field),
            resume=True,
            progress=progress,
            watchdog=watchdog,
            wandb=wandb,
            devices=devices,
        )

    @property
    def config(self) -> RunConfig:
        """The current phase's config (after a phase change, the prepared strategy's)."""
        return self.phase.config

    @property
    def algo(self) -> Algorithm:
        """The current phase's algorithm."""
        return self.phase.algo

    @property
    def spec(self) -> EnvSpec:
        """The environment's spec."""
        return self.phase.algo.spec

    @property
    def run_dir(self) -> Path:
        """The run's directory."""
        return self.store.path

    @property
    def evaluator(self) -> Evaluator:
        """The current phase's evaluator."""
        return Evaluator(self.phase.config, self.phase.algo)

    def restore_latest(self) -> Any | None:
        """The state of all seeds at the run's last checkpoint, or None when it has none.

        Reads ``run_dir`` without training (a finished or interrupted run, e.g. through
        ``from_run_dir``); ``run`` resumes through the same restore.
        """
        template = init_seeds(self.algo)(seed_keys(self.config))
        checkpoints = self.store.checkpoints()
        try:
            restored = checkpoints.restore(template)
        finally:
            checkpoints.close()
        return None if restored is None else restored[1]

    def request_stop(self) -> None:
        """Stop ``run`` after the chunk in progress is checkpointed (safe from a signal handler).

        ``run`` then returns None without the final evaluation; ``resume`` continues the run
        from that checkpoint as if it had never stopped.
        """
        self.stop_requested = True

    def run(self, max_chunks: int | None = None) -> dict[str, Any] | None:
        """Train every chunk (from the last checkpoint when resuming) and write the results.

        ``max_chunks`` stops after that many chunks of this session without the final
        evaluation, as a killed run would (returns None); so does ``request_stop``.
        """
        if not self.resume and self.store.holds_files():
            raise ConfigError(
                f"run-dir: {self.run_dir} already holds a run; resume it with "
                "`prism-marl train --resume` or choose another directory"
            )
        require_state_fits(self.algo, seed_keys(self.config), self.config.algo_config)
        watching = self.watchdog.watching() if self.watchdog else contextlib.nullcontext()
        # Everything opened for this session (the run's lock, checkpointers, progress bar,
        # TensorBoard writer, W&B run) closes here, however the session ends.
        with contextlib.ExitStack() as closing, watching:
            self.store.open(self.config, closing)
            checkpoints = self.store.checkpoints()
            closing.callback(checkpoints.close)
            best = self.store.best_checkpoints()
            closing.callback(best.close)
            total = self.plan.total_steps
            progress = Progress(total, self.config.num_seeds, self.progress)
            closing.callback(progress.close)
            return self._train(Session(checkpoints, best, [], progress), closing, max_chunks)

    def _phase(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Label a phase for the stall watchdog (a no-op without one)."""
        return self.watchdog.phase(name) if self.watchdog else contextlib.nullcontext()

    def _start(self, session: Session) -> Start:
        """Where this session starts.

        A new run starts from the initial state, a resumed one from its last checkpoint (or,
        killed before its first, from the initial state with its step-0 records).
        """
        with self._phase("init"):
            # Restoring into a sharded template puts a checkpoint onto this run's devices,
            # whatever count wrote it.
            state = place(init_seeds(self.algo)(seed_keys(self.config)), self.sharding)
            jax.block_until_ready(state)
        if not self.resume:
            return Start(0, 0.0, state, None)
        with self._phase("checkpoint restore"):
            restored = session.checkpoints.restore(state)
            chunk, wall_before = 0, 0.0
            if restored is not None:
                last, state, wall_before = restored
                chunk = last + 1
            # The best policies as they were at the evaluation point training resumes after.
            return Start(chunk, wall_before, state, session.best.restore(state.variables, chunk))

    def _train(
        self, session: Session, closing: contextlib.ExitStack, max_chunks: int | None
    ) -> dict[str, Any] | None:
        start = self._start(session)
        start_chunk, state, best = start.chunk, start.state, start.best
        done_steps = start_chunk * self.plan.chunk_steps
        records = self.store.read_metrics(done_steps) if self.resume else []
        session.logs = self._open_logs(done_steps, closing)
        if not records:
            # The untrained policy's evaluation anchors every learning curve at step 0.
            with self._phase("evaluation at step 0"):
                records = self._evaluate(state, -1, {}, env_steps=0)
            best = improve(None, state.variables, _returns(records, self.config), 0)
            assert best is not None  # the first evaluation is every seed's best so far
            session.best.save(0, best)
            for log in session.logs:
                log.log(records, 0)
        self.store.write_metrics(records)

        session_start = session.progress.start = time.time()
        for chunk in range(start_chunk, self.plan.num_chunks):
            if self.stop_requested or (
                max_chunks is not None and chunk - start_chunk >= max_chunks
            ):
                return None
            if self.phase.ends_before(chunk, self.plan):
                with self._phase(f"preparation before chunk {chunk}"):
                    state = self._change_phase(state, session)
                best = None  # the policies changed shape: earlier best policies cannot be kept
            with self._phase(f"chunk {chunk}"):
                state, metrics = self._chunk(state)
                bad = non_finite_losses(metrics)
            if bad:
                raise TrainingDivergedError(
                    f"non-finite {', '.join(bad)} in the chunk ending at env step "
                    f"{(chunk + 1) * self.plan.chunk_steps:,}; the last good checkpoint "
                    f"(step {chunk * self.plan.chunk_steps:,}) is kept in {self.run_dir}"
                )
            session_steps = (chunk + 1 - start_chunk) * self.plan.chunk_steps
            done_steps = (chunk + 1) * self.plan.chunk_steps
            elapsed = max(time.time() - session_start, 1e-9)
            wall = start.wall_before + time.time() - session_start
            sps = session_steps * self.config.num_seeds / elapsed
            with self._phase(f"evaluation after chunk {chunk}"):
                new = self._evaluate(state, chunk, metrics, done_steps, wall, sps)
            records.extend(new)
            self.store.write_metrics(records)
            for log in session.logs:
                log.log(new, done_steps)
            with self._phase(f"checkpoint after chunk {chunk}"):
                # The best policies first: a process that dies between the two saves resumes
                # from the previous rolling checkpoint and repeats this evaluation point.
                improved = improve(best, state.variables, _returns(new, self.config), done_steps)
                if improved is not None:
                    best = improved
                    session.best.save(chunk + 1, best)
                session.checkpoints.save(chunk, state, wall)
            latest = float(np.mean([r["eval_return"] for r in new]))
            session.progress.update(done_steps, session_steps, latest)
        session.logs[0].close()
        session.progress.close()
        with self._phase("final evaluation"):
            summary = self._finish(state, records, best)
        for log in session.logs[1:]:
            log.summary(summary)
        return summary

    def _chunk(self, state: Any) -> tuple[Any, dict[str, Any]]:
        """One training chunk of every seed (the state passed in is donated)."""
        program = train_chunks(self.algo, self.plan.updates_per_chunk)
        return program(donatable(state))

    def _evaluate(
        self,
        state: Any,
        chunk: int,
        metrics: dict[str, Any],
        env_steps: int,
        wall_time: float = 0.0,
        steps_per_second: float = 0.0,
    ) -> list[dict[str, Any]]:
        """The evaluation after ``chunk`` (-1: before the first) as ``metrics.jsonl`` records.

        ``metrics``: the chunk's training metrics, to which SND is added; the rest is the
        records' timing (``EvalPoint``).
        """
        evaluator = self.evaluator
        returns, won = evaluator.episodes(state.variables, self.config.eval_episodes, chunk=chunk)
        metrics = {**metrics, **evaluator.diversity(state.variables)}
        jax.block_until_ready(returns)
        point = EvalPoint(env_steps, wall_time, steps_per_second, returns, won)
        return metric_records(self.config, self.spec.has_win, point, metrics)

    def _change_phase(self, state: Any, session: Session) -> Any:
        """The next phase (SePS: after clustering), recorded in the run directory.

        Checkpoints and best policies of the phase before hold other shapes: they go.
        """
        change = self.phase.change(state)
        self.phase = change.phase
        self.store.write_config(self.config)
        self.store.write_preparation(change.record)
        session.checkpoints.clear()
        session.best.clear()
        return place(change.state, self.sharding)

    def _open_logs(self, done_steps: int, closing: contextlib.ExitStack) -> list[Any]:
        """TensorBoard's writer, then the W&B run when the run logs to W&B; closed by ``closing``.

        TensorBoard drops the events a killed session wrote after ``done_steps``.
        """
        tensorboard = TensorBoardLog(self.run_dir, purge_step=done_steps + 1)
        closing.callback(tensorboard.close)
        if self.wandb is None:
            return [tensorboard]
        wandb = WandbLog(self.wandb, self.run_dir, to_dict(self.config))
        closing.push(lambda kind, error, trace: wandb.close(failed=kind is not None))
        return [tensorboard, wandb]

    def _finish(
        self, state: Any, records: list[dict[str, Any]], best: Best | None
    ) -> dict[str, Any]:
        """The final evaluations, written to the run's results files; returns the summary."""
        timing = {
            "wall_seconds": max((r["wall_time"] for r in records), default=0.0),
            "steps_per_second": records[-1]["steps_per_second"] if records else None,
        }
        final = self.evaluator.final(state.variables, best, self.plan, timing)
        title = f"{self.config.algo} + {self.config.sharing.name} on {self.config.env.id}"
        marl_eval = marl_eval_table(self.config, records, final.absolute)
        self.store.write_results(final.summary, marl_eval, final.masks, records, title)
        return final.summary


def _returns(records: list[dict[str, Any]], config: RunConfig) -> np.ndarray:
    """Every seed's evaluation episodes' returns in one point's records, [S, episodes]."""
    by_seed = sorted(records, key=lambda r: r["seed"])
    assert len(by_seed) == config.num_seeds
    return np.asarray([r["eval_episode_returns"] for r in by_seed])


def train(
    config: RunConfig, *, progress: bool = True, devices: int | None = None
) -> dict[str, Any] | None:
    """Train a new run on ``devices`` local devices (None: all that divide the seeds)."""
    return Trainer(config, progress=progress, devices=devices).run()


def resume(
    run_dir: str | Path, *, progress: bool = True, devices: int | None = None
) -> dict[str, Any] | None:
    """Continue a run from its last checkpoint, on any number of devices."""
    return Trainer.from_run_dir(run_dir, progress=progress, devices=devices).run()
