"""The chunked outer loop: train chunk -> evaluate -> log -> checkpoint, for all seeds at once.

``init`` and ``train_chunk`` run under ``jit(vmap(...))`` over seeds; this host loop writes the
results files, a progress line and orbax checkpoints. A resumed run restores the last
checkpoint, drops log lines written after it, and continues with the same keys, so it ends with
the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from prism_marl.algos import Algorithm, make_algorithm
from prism_marl.algos.common import select_network
from prism_marl.best_policy import ABSOLUTE_FACTOR, Best, BestCheckpoints, improve
from prism_marl.config import RunConfig, from_dict, to_dict
from prism_marl.devices import place, seed_sharding
from prism_marl.envs import make_env
from prism_marl.envs.base import EnvSpec
from prism_marl.errors import ConfigError, TrainingDivergedError
from prism_marl.loggers import TensorBoardLog, WandbLog, WandbOptions
from prism_marl.memory import require_state_fits
from prism_marl.programs import diversities, donatable, evaluations, init_seeds, train_chunks
from prism_marl.report import stats
from prism_marl.results import read_jsonl, to_builtin, write_json, write_jsonl
from prism_marl.rl.evaluation import samples_at_test
from prism_marl.runlock import run_lock
from prism_marl.sharing.base import SharingStrategy, count_leaves
from prism_marl.watchdog import Watchdog

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
MARL_EVAL_FILE = "marl_eval.json"
CURVE_FILE = "learning_curve.png"
MASKS_FILE = "agent_masks.json"
PREPARATION_FILE = "preparation.json"


@dataclasses.dataclass
class Plan:
    """How a run's steps divide into updates and chunks."""

    steps_per_update: int
    updates_per_chunk: int
    num_chunks: int

    @classmethod
    def of(cls, config: RunConfig) -> Plan:
        """Equal chunks of whole updates, at most ``eval_interval`` steps each, covering the run.

        The fewest chunks that keep evaluations at most ``eval_interval`` apart, then the fewest
        updates per chunk that cover ``total_steps``: a run overshoots by less than one update
        per chunk (rounding chunks up to ``eval_interval`` could add almost a whole interval).
        """
        per_update = config.algo_config.steps_per_update
        max_per_chunk = max(1, config.eval_interval // per_update)
        updates = max(1, math.ceil(config.total_steps / per_update))
        num_chunks = math.ceil(updates / max_per_chunk)
        return cls(per_update, math.ceil(updates / num_chunks), num_chunks)

    @property
    def chunk_steps(self) -> int:
        """Environment steps per seed in one chunk."""
        return self.steps_per_update * self.updates_per_chunk


def build_algorithm(config: RunConfig, strategy: SharingStrategy | None = None) -> Algorithm:
    """The algorithm object for a run (with an explicit strategy after a preparation step).

    Equal settings give the same object within a process, so that ``programs``' memoised
    builders hand trainers of equal settings the programs already compiled.
    """
    plan = Plan.of(config)
    setting = (
        config.algo,
        config.env,
        strategy or config.sharing,
        config.algo_config,
        plan.num_chunks * plan.chunk_steps,
    )
    try:
        return _algorithm(*setting)
    except TypeError:  # an unhashable setting (a list where a tuple belongs): build afresh
        return _algorithm.__wrapped__(*setting)


@functools.lru_cache(maxsize=16)
def _algorithm(
    name: str, env: Any, strategy: SharingStrategy, algo_config: Any, total_steps: int
) -> Algorithm:
    return make_algorithm(name, make_env(env), strategy, algo_config, total_steps)


def prepare_strategy(
    config: RunConfig, algo: Algorithm, state: Any
) -> tuple[Algorithm, Any, dict[str, Any]]:
    """Host side, all seeds: prepare ``algo``'s strategy from ``state`` (SePS: cluster agents).

    Collects every seed's per-agent transitions with its current policy, lets the strategy
    prepare itself from them (each seed from its own), builds the algorithm for the prepared
    strategy and carries every seed's variables over with ``Preparation.adopt`` (fresh
    optimizer states). Returns the new algorithm, the new state and the preparation's record.
    """
    data = algo.agent_transitions(state)
    preparation = algo.strategy.prepare(data, jax.random.PRNGKey(config.seed + 7))
    new_algo = build_algorithm(config, preparation.strategy)
    fresh = init_seeds(new_algo)(seed_keys(config))
    adopted = jax.vmap(preparation.adopt)(state.variables, fresh.variables, preparation.per_seed)
    return new_algo, new_algo.with_variables(state, adopted), dict(preparation.record)


def non_finite_losses(metrics: dict[str, Any]) -> list[str]:
    """Names of loss metrics (``loss/*``) holding a NaN or infinity for any seed."""
    return sorted(
        name
        for name, value in metrics.items()
        if name.startswith("loss/") and not np.all(np.isfinite(np.asarray(value)))
    )


def seed_keys(config: RunConfig) -> jax.Array:
    """One raw PRNG key per seed: fold_in(PRNGKey(seed), i)."""
    base = jax.random.PRNGKey(config.seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(config.num_seeds))


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
        self.config = config
        self.watchdog = watchdog
        self.wandb = wandb
        self.run_dir = Path(config.run_dir)
        self.plan = Plan.of(config)
        self.progress = progress
        self.resume = resume
        self.algo = build_algorithm(config)  # validates the environment and algorithm
        self.spec: EnvSpec = self.algo.spec
        self.stop_requested = False

    # ----------------------------------------------------------------------- bookkeeping

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
        path = Path(run_dir) / CONFIG_FILE
        if not path.exists():
            raise ConfigError(f"{field}: {run_dir} holds no {CONFIG_FILE}")
        import json

        config = from_dict(json.loads(path.read_text()))
        return cls(
            dataclasses.replace(config, run_dir=str(run_dir)),
            resume=True,
            progress=progress,
            watchdog=watchdog,
            wandb=wandb,
            devices=devices,
        )

    def _checkpointer(self) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(
            (self.run_dir / "checkpoints").absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
        )

    def _save(self, manager: ocp.CheckpointManager, chunk: int, state: Any, wall: float):
        payload = {"state": state, "wall_seconds": np.asarray(wall)}
        manager.save(chunk, args=ocp.args.StandardSave(payload))
        manager.wait_until_finished()

    def _restore(self, manager: ocp.CheckpointManager, template: Any):
        chunk = manager.latest_step()
        if chunk is None:
            return None
        target = {"state": template, "wall_seconds": np.asarray(0.0)}
        restored = manager.restore(chunk, args=ocp.args.StandardRestore(target))
        return chunk, restored["state"], float(restored["wall_seconds"])

    def restore_latest(self) -> Any | None:
        """The state of all seeds at the run's last checkpoint, or None when it has none.

        Reads ``run_dir`` without training (a finished or interrupted run, e.g. through
        ``from_run_dir``); ``run`` resumes through the same restore.
        """
        template = init_seeds(self.algo)(seed_keys(self.config))
        manager = self._checkpointer()
        try:
            restored = self._restore(manager, template)
        finally:
            manager.close()
        return None if restored is None else restored[1]

    # -------------------------------------------------------------------------- training

    def run(self, max_chunks: int | None = None) -> dict[str, Any] | None:
        """Train every chunk (from the last checkpoint when resuming) and write the results.

        ``max_chunks`` stops after that many chunks of this session without the final
        evaluation, as a killed run would (returns None); so does ``request_stop``.
        """
        if not self.resume and self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise ConfigError(
                f"run-dir: {self.run_dir} already holds a run; resume it with "
                "`prism-marl train --resume` or choose another directory"
            )
        require_state_fits(self.algo, seed_keys(self.config), self.config.algo_config)
        watching = self.watchdog.watching() if self.watchdog else contextlib.nullcontext()
        # Everything opened for this session (the run's lock, checkpointers, progress bar,
        # TensorBoard writer, W&B run) closes here, however the session ends.
        with contextlib.ExitStack() as closing, watching:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                closing.enter_context(run_lock(self.run_dir))
                write_json(self.run_dir / CONFIG_FILE, to_dict(self.config))
            except OSError as error:
                raise ConfigError(
                    f"run-dir: cannot write to {self.run_dir} ({error.strerror or error})"
                ) from error
            manager = self._checkpointer()
            closing.callback(manager.close)
            progress = Progress(
                self.plan.num_chunks * self.plan.chunk_steps, self.config.num_seeds, self.progress
            )
            closing.callback(progress.close)
            return self._train(manager, progress, closing, max_chunks)

    def request_stop(self) -> None:
        """Stop ``run`` after the chunk in progress is checkpointed (safe from a signal handler).

        ``run`` then returns None without the final evaluation; ``resume`` continues the run
        from that checkpoint as if it had never stopped.
        """
        self.stop_requested = True

    def _phase(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Label a phase for the stall watchdog (a no-op without one)."""
        return self.watchdog.phase(name) if self.watchdog else contextlib.nullcontext()

    def _train(
        self,
        manager: ocp.CheckpointManager,
        progress: Progress,
        closing: contextlib.ExitStack,
        max_chunks: int | None,
    ) -> dict[str, Any] | None:
        with self._phase("init"):
            # Restoring into a sharded template puts a checkpoint onto this run's devices,
            # whatever count wrote it.
            state = place(init_seeds(self.algo)(seed_keys(self.config)), self.sharding)
            jax.block_until_ready(state)
        start_chunk, wall_before = 0, 0.0
        best_checkpoints = BestCheckpoints(self.run_dir)
        closing.callback(best_checkpoints.close)
        with self._phase("checkpoint restore"):
            restored = self._restore(manager, state) if self.resume else None
            if restored is not None:
                start_chunk = restored[0] + 1
            # The best policies as they were at the evaluation point training resumes after.
            best = best_checkpoints.restore(state.variables, start_chunk) if self.resume else None
        records = read_jsonl(self.run_dir / METRICS_FILE) if self.resume else []
        if restored is not None:
            _, state, wall_before = restored
        done_steps = start_chunk * self.plan.chunk_steps
        records = [r for r in records if r["env_steps"] <= done_steps]
        logs = self._open_logs(done_steps, closing)
        if not records:
            # The untrained policy's evaluation anchors every learning curve at step 0.
            with self._phase("evaluation at step 0"):
                returns, won = self.evaluate_policies(state, self.config.eval_episodes, chunk=-1)
                diversity = self.diversity(state)
                jax.block_until_ready(returns)
            records = self._records(0, 0.0, 0.0, diversity, returns, won)
            best = improve(None, state.variables, returns, 0)
            assert best is not None  # the first evaluation is every seed's best so far
            best_checkpoints.save(0, best)
            for log in logs:
                log.log(records, 0)
        write_jsonl(self.run_dir / METRICS_FILE, records)

        session_start = progress.start = time.time()
        session_steps = 0
        for chunk in range(start_chunk, self.plan.num_chunks):
            if self.stop_requested or (
                max_chunks is not None and chunk - start_chunk >= max_chunks
            ):
                return None
            with self._phase(f"preparation before chunk {chunk}"):
                state, prepared = self._maybe_prepare(state, chunk, manager)
                state = place(state, self.sharding) if prepared else state
            if prepared:  # the policies changed shape: earlier best policies cannot be kept
                best_checkpoints.clear()
                best = None
            with self._phase(f"chunk {chunk}"):
                state, metrics = self._chunk_fn(state)
                bad = non_finite_losses(metrics)
            if bad:
                raise TrainingDivergedError(
                    f"non-finite {', '.join(bad)} in the chunk ending at env step "
                    f"{(chunk + 1) * self.plan.chunk_steps:,}; the last good checkpoint "
                    f"(step {chunk * self.plan.chunk_steps:,}) is kept in {self.run_dir}"
                )
            with self._phase(f"evaluation after chunk {chunk}"):
                returns, won = self.evaluate_policies(state, self.config.eval_episodes, chunk=chunk)
                metrics = {**metrics, **self.diversity(state)}
                jax.block_until_ready(returns)
            session_steps += self.plan.chunk_steps
            done_steps = (chunk + 1) * self.plan.chunk_steps
            wall = wall_before + time.time() - session_start
            elapsed = max(time.time() - session_start, 1e-9)
            sps = session_steps * self.config.num_seeds / elapsed
            new = self._records(done_steps, wall, sps, metrics, returns, won)
            records.extend(new)
            write_jsonl(self.run_dir / METRICS_FILE, records)
            for log in logs:
                log.log(new, done_steps)
            with self._phase(f"checkpoint after chunk {chunk}"):
                # The best policies first: a process that dies between the two saves resumes
                # from the previous rolling checkpoint and repeats this evaluation point.
                improved = improve(best, state.variables, returns, done_steps)
                if improved is not None:
                    best = improved
                    best_checkpoints.save(chunk + 1, best)
                self._save(manager, chunk, state, wall)
            progress.update(
                done_steps, session_steps, float(np.mean([r["eval_return"] for r in new]))
            )
        logs[0].close()
        progress.close()
        with self._phase("final evaluation"):
            summary = self._finish(state, records, best)
        for log in logs[1:]:
            log.summary(summary)
        return summary

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

    _compiled: dict[str, Any]

    def _chunk_fn(self, state: Any):
        fns = self.__dict__.setdefault("_compiled", {})
        if "chunk" not in fns:
            fns["chunk"] = train_chunks(self.algo, self.plan.updates_per_chunk)
        return fns["chunk"](donatable(state))

    @property
    def eval_greedy(self) -> bool:
        """The run's evaluation mode: its ``eval_greedy``, else the algorithm's test policy."""
        if self.config.eval_greedy is not None:
            return self.config.eval_greedy
        return not samples_at_test(self.algo.output_kind)

    def evaluate_policies(
        self, state: Any, episodes: int, *, chunk: int, greedy: bool | None = None
    ) -> tuple[Any, Any]:
        """Play ``episodes`` whole episodes with every seed's policy in ``state``.

        Returns ``(returns, won)``, each [num_seeds, episodes]. ``greedy`` defaults to the
        run's evaluation mode (``eval_greedy``). ``chunk`` picks the episodes' keys
        (``PRNGKey(chunk + 1)`` folded with each seed): training passes the chunk just trained,
        -1 before the first, so equal arguments replay equal episodes.
        """
        return self.evaluate_variables(state.variables, episodes, chunk=chunk, greedy=greedy)

    def evaluate_variables(
        self, variables: Any, episodes: int, *, chunk: int, greedy: bool | None = None
    ) -> tuple[Any, Any]:
        """``evaluate_policies`` for policies given by their variables (leading seed axis)."""
        greedy = self.eval_greedy if greedy is None else greedy
        fns = self.__dict__.setdefault("_compiled", {})
        name = f"eval_{episodes}"
        if name not in fns:
            fns[name] = evaluations(self.algo, episodes)
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(chunk + 1), i))(
            jnp.arange(self.config.num_seeds) + 1000 * self.config.seed
        )
        return fns[name](variables, keys, jnp.asarray(greedy))

    def diversity(self, state: Any) -> dict[str, Any]:
        """``{"eval/snd": [num_seeds]}``: every seed's SND (``rl/diversity.py``).

        Measured on the same ``diversity_episodes`` episodes at each evaluation; empty where
        SND is not defined (agents with different observation layouts) or turned off.
        """
        episodes = self.config.diversity_episodes
        if episodes == 0 or not self.spec.homogeneous:
            return {}
        fns = self.__dict__.setdefault("_compiled", {})
        if "snd" not in fns:
            fns["snd"] = diversities(self.algo, episodes)
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(7), i))(
            jnp.arange(self.config.num_seeds)
        )
        return {"eval/snd": fns["snd"](state.variables, keys)}

    def _records(self, steps, wall, sps, metrics, returns, won) -> list[dict[str, Any]]:
        records = []
        for seed in range(self.config.num_seeds):
            record: dict[str, Any] = {
                "seed": seed,
                "env_steps": steps,
                "wall_time": round(wall, 3),
                "eval_return": float(np.mean(returns[seed])),
                "steps_per_second": round(sps, 1),
                "train/optimizer_steps": self.config.algo_config.optimizer_steps(steps),
            }
            if self.spec.has_win:
                record["eval_win_rate"] = float(np.mean(won[seed]))
            # Every episode, for marl-eval's per-step lists (marl_eval.json).
            record["eval_episode_returns"] = [float(v) for v in np.asarray(returns[seed])]
            if self.spec.has_win:
                record["eval_episode_wins"] = [float(v) for v in np.asarray(won[seed])]
            for name, value in metrics.items():
                array = np.asarray(value[seed])
                if array.ndim == 0 or array.size <= 64:
                    record[name] = to_builtin(array)
            records.append(record)
        return records

    # ----------------------------------------------------------------------- preparation

    def _maybe_prepare(self, state: Any, chunk: int, manager: Any) -> tuple[Any, bool]:
        """Before ``chunk``: prepare the strategy once its ``preparation_steps`` are trained.

        Preparation (SePS: clustering agents) builds the algorithm anew for the prepared
        strategy and continues every seed from ``Preparation.adopt``; a no-op otherwise.
        Returns the state and whether it prepared.
        """
        strategy = self.algo.strategy
        steps = strategy.preparation_steps
        if steps == 0 or chunk < math.ceil(steps / self.plan.chunk_steps):
            return state, False
        new_algo, state, record = prepare_strategy(self.config, self.algo, state)
        self.algo = new_algo
        self.__dict__["_compiled"] = {}
        self.config = dataclasses.replace(self.config, sharing=new_algo.strategy)
        write_json(self.run_dir / CONFIG_FILE, to_dict(self.config))
        if record:  # per-seed facts (SePS's clusters) that the config cannot hold
            write_json(self.run_dir / PREPARATION_FILE, record)
        # Checkpoints before the switch hold one-cluster shapes; drop them.
        for step in list(manager.all_steps()):
            manager.delete(step)
        return state, True

    # --------------------------------------------------------------------------- results

    def _finish(
        self, state: Any, records: list[dict[str, Any]], best: Best | None
    ) -> dict[str, Any]:
        episodes, chunk = self.config.final_eval_episodes, self.plan.num_chunks + 10_000
        returns, won = self.evaluate_policies(state, episodes, chunk=chunk)
        returns, won = np.asarray(returns), np.asarray(won)
        finals = [float(np.mean(returns[s])) for s in range(self.config.num_seeds)]
        variables = jax.tree_util.tree_map(lambda x: x[0], state.variables)
        actor = select_network(variables, "actor")
        summary: dict[str, Any] = {
            "algo": self.config.algo,
            "sharing": self.config.sharing.name,
            "env": self.config.env.id,
            "num_seeds": self.config.num_seeds,
            "env_steps": self.plan.num_chunks * self.plan.chunk_steps,
            **final_statistics(finals),
            "wall_seconds": max((r["wall_time"] for r in records), default=0.0),
            "steps_per_second": records[-1]["steps_per_second"] if records else None,
            "parameters": count_leaves(variables["params"]),
            "actor_parameters": count_leaves(actor["params"]),
            "additional": self.algo.strategy.additional_resource(actor, self.spec.num_agents),
        }
        if self.spec.has_win:
            summary["final_win_rate_mean"] = float(np.mean(won))
        summary["eval_mode"] = "greedy" if self.eval_greedy else "sampled"
        summary.update(self._both_modes(state, episodes, chunk, returns, won))
        absolute_returns, absolute_won, best_steps = self._absolute(state, best)
        summary.update(
            absolute_episodes=ABSOLUTE_FACTOR * self.config.eval_episodes,
            absolute_returns=[float(v) for v in absolute_returns.mean(axis=1)],
            absolute_return_mean=float(np.mean(absolute_returns)),
            best_env_steps=[int(v) for v in best_steps],
        )
        if self.spec.has_win:
            summary["absolute_win_rate_mean"] = float(np.mean(absolute_won))
        write_json(self.run_dir / SUMMARY_FILE, summary)
        self._write_masks(state)
        marl_eval = self._marl_eval(records, absolute_returns, absolute_won)
        write_json(self.run_dir / MARL_EVAL_FILE, marl_eval)
        from prism_marl.report.run_figures import plot_learning_curve

        plot_learning_curve(records, self.run_dir / CURVE_FILE, title=self._title())
        return summary

    def _absolute(self, state: Any, best: Best | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gorsane et al.'s absolute metric: each seed's best policy on 10× the episodes.

        Returns ``(returns, won)``, each ``[S, 10 · eval_episodes]``, and the environment steps
        at which each seed's best policy was evaluated, ``[S]``. Without a record of the best
        (a run resumed from a checkpoint written before it was kept) the final policy stands in.
        """
        if best is None:
            steps = self.plan.num_chunks * self.plan.chunk_steps
            best = Best(state.variables, np.zeros(0), np.full(self.config.num_seeds, steps))
        episodes = ABSOLUTE_FACTOR * self.config.eval_episodes
        returns, won = self.evaluate_variables(
            best.variables, episodes, chunk=self.plan.num_chunks + 20_000
        )
        return np.asarray(returns), np.asarray(won), np.asarray(best.env_steps)

    def _both_modes(self, state: Any, episodes: int, chunk: int, returns, won) -> dict[str, Any]:
        """A stochastic policy's final returns both greedy and sampled, on the same keys.

        ``final_returns_{greedy,sampled}`` per seed, their means, and win rates.
        Empty for Q-learners and deterministic actors, whose greedy policy is their policy.
        """
        if not samples_at_test(self.algo.output_kind):
            return {}
        other = self.evaluate_policies(state, episodes, chunk=chunk, greedy=not self.eval_greedy)
        modes = {self.eval_greedy: (returns, won), not self.eval_greedy: other}
        keys: dict[str, Any] = {}
        for greedy, (mode_returns, mode_won) in modes.items():
            mode = "greedy" if greedy else "sampled"
            per_seed = [float(v) for v in np.asarray(mode_returns).mean(axis=1)]
            keys[f"final_returns_{mode}"] = per_seed
            keys[f"final_return_{mode}_mean"] = float(np.mean(per_seed))
            if self.spec.has_win:
                keys[f"final_win_rate_{mode}_mean"] = float(np.mean(mode_won))
        return keys

    def _write_masks(self, state: Any) -> None:
        """Prism's final masks: ``agent_masks.json`` and seed 0's heatmap ``agent_masks.png``.

        The JSON maps each layer to [seed][agent][singular value]; strategies without masks
        write nothing.
        """
        actor = jax.vmap(lambda v: self.algo.strategy.agent_masks(select_network(v, "actor")))
        masks = actor(state.variables)
        if not masks:
            return
        table = {name: to_builtin(np.asarray(values)) for name, values in masks.items()}
        write_json(self.run_dir / MASKS_FILE, table)
        from prism_marl.report.run_figures import plot_agent_masks

        plot_agent_masks({k: v[0] for k, v in table.items()}, self.run_dir / "agent_masks.png")

    def _title(self) -> str:
        return f"{self.config.algo} + {self.config.sharing.name} on {self.config.env.id}"

    def _marl_eval(self, records, returns, won) -> dict[str, Any]:
        """marl-eval's raw format: env -> task -> algorithm -> run -> step -> metric lists.

        Each step holds every evaluation episode's return (and win); ``absolute_metrics`` the
        best policy's returns on 10× the episodes (``_absolute``).
        """
        family, _, task = self.config.env.id.partition(":")
        algorithm = f"{self.config.algo}_{self.config.sharing.name}"
        runs: dict[str, Any] = {}
        for seed in range(self.config.num_seeds):
            mine = [r for r in records if r["seed"] == seed]
            run: dict[str, Any] = {}
            for index, record in enumerate(mine):
                # Records written before the episodes were kept hold only their means.
                episodes = record.get("eval_episode_returns", [record["eval_return"]])
                step = {"step_count": record["env_steps"], "return": episodes}
                if "eval_win_rate" in record:
                    step["win_rate"] = record.get("eval_episode_wins", [record["eval_win_rate"]])
                run[f"step_{index}"] = step
            absolute = {"return": [float(v) for v in returns[seed]]}
            if self.spec.has_win:
                absolute["win_rate"] = [float(v) for v in won[seed]]
            run["absolute_metrics"] = absolute
            runs[f"run_{seed}"] = run
        return {family: {task: {algorithm: runs}}}


def final_statistics(finals: list[float]) -> dict[str, Any]:
    """``summary.json``'s statistics of the seeds' final returns (``report.stats``).

    Mean and IQM (rliable's: the 25% trimmed mean, the plain mean for fewer than 4 seeds), each
    with its 95% percentile interval over 2,000 bootstrap resamples of the seeds, and a
    ``statistics`` entry that says so.
    """
    how = stats.DEFAULT
    mean, iqm = stats.mean_estimate(finals, how), stats.iqm_estimate(finals, how)
    return {
        "final_return_mean": mean.point,
        "final_return_mean_ci95": [mean.low, mean.high],
        "final_return_iqm": iqm.point,
        "final_return_iqm_ci95": [iqm.low, iqm.high],
        "final_returns": finals,
        "statistics": {
            "iqm": "25% trimmed mean over seeds (rliable's aggregate_iqm)",
            "ci95": f"{how.describe()} of the seeds (percentile interval, seed {how.seed})",
        },
    }


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
