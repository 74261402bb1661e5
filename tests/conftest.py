"""Shared test configuration: CPU only; the slow learning checks spread over two workers."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Faster-compiling XLA:CPU code generation for the suite, whose time is mostly compiles of
# tiny programs: LLVM at -O1 and the classic fusion emitters (a tiny MAPPO run 14.6 -> 8.0 s,
# a MaBrax step 6.5 -> 3.7 s; training throughput within -12%..+8% by family). Users and
# `prism-marl bench` keep XLA's defaults; docs/decisions/0026-test-compiler-options.md.
TEST_XLA_FLAGS = ("--xla_backend_optimization_level=1", "--xla_cpu_use_fusion_emitters=false")
for _flag in TEST_XLA_FLAGS:
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}".strip()

import jax  # noqa: E402

import prism_marl  # noqa: E402

# The settings `prism-marl` runs with (decision 0040), before any test computes: XLA reads its
# flags when the first computation starts its backend.
prism_marl.tune_cpu()

CACHE_VARIABLE = "PRISM_MARL_TEST_XLA_CACHE"


def pytest_configure(config):
    """A persistent XLA cache shared by the run's test processes: trainers built twice from one
    config (resume, determinism and results tests), and module fixtures that both workers
    build, compile their programs once. Programs that compile in under a second are not worth
    the disk round trip.

    The first process (the controller, or a run without xdist) makes the directory and removes
    it at exit; the xdist workers it starts inherit its name through the environment.
    """
    cache_dir = os.environ.get(CACHE_VARIABLE)
    if cache_dir is None or not hasattr(config, "workerinput"):
        cache_dir = tempfile.mkdtemp(prefix="prism-marl-xla-")
        os.environ[CACHE_VARIABLE] = cache_dir
        atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
    # Training processes the tests start (CLI and sweep subprocesses) share it too.
    os.environ["PRISM_MARL_XLA_CACHE"] = cache_dir
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    # A size limit turns on jax's file lock around reads and writes, so that one worker never
    # reads an entry the other is still writing.
    jax.config.update("jax_compilation_cache_max_size", 8 * 2**30)


def pytest_collection_modifyitems(config, items):
    """Order the suite so that ``make test`` (two xdist workers, ``--dist worksteal``) starts
    both workers on the long learning checks.

    worksteal hands each worker one half of the collection and later moves the unstarted tail
    of a busy worker's queue to an idle one; a running test never moves. Left in collection
    order, the learning checks (``slow(minutes=...)``, tens of minutes together) would sit at
    the end of one half and keep one core busy long after the other ran out of work. Here the
    slow tests are balanced over the two halves by their stated minutes (longest first onto
    the lighter half) and lead each half; fast tests keep their order, half to each.
    """
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    fast = [item for item in items if item.get_closest_marker("slow") is None]
    halves: list[list] = [[], []]
    load = [0.0, 0.0]
    for item in sorted(slow, key=lambda i: -i.get_closest_marker("slow").kwargs.get("minutes", 1)):
        lighter = 0 if load[0] <= load[1] else 1
        halves[lighter].append(item)
        load[lighter] += item.get_closest_marker("slow").kwargs.get("minutes", 1)
    # Equal halves of the whole collection, as worksteal splits it.
    first = max(0, len(items) // 2 - len(halves[0]))
    items[:] = halves[0] + fast[:first] + halves[1] + fast[first:]


# ----------------------------------------------------------------- shared test helpers

import dataclasses  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from prism_marl.algos.matd3 import MATD3Config  # noqa: E402
from prism_marl.algos.ppo import PPOConfig  # noqa: E402
from prism_marl.algos.qmix import QMIXConfig  # noqa: E402
from prism_marl.config import EnvConfig, RunConfig  # noqa: E402
from prism_marl.run import METRICS_FILE, Trainer  # noqa: E402
from prism_marl.sharing import FuPS, Prism  # noqa: E402

TINY_PPO = PPOConfig(
    num_envs=4,
    rollout_length=8,
    num_minibatches=2,
    num_epochs=2,
    hidden_sizes=(16, 16),
    critic_hidden_sizes=(16,),
)
TINY_QMIX = QMIXConfig(
    num_envs=2,
    segment_length=8,
    buffer_size=8,
    batch_size=2,
    learning_starts=2,
    gradient_steps=2,
    hidden_size=8,
    mixer_embed=4,
    hypernet_hidden=8,
    target_update_interval=3,
    epsilon_steps=64,
)
TINY_MATD3 = MATD3Config(
    num_envs=2,
    rollout_length=4,
    gradient_steps=2,
    batch_size=8,
    buffer_size=64,
    learning_starts=16,
    hidden_sizes=(16, 16),
    critic_hidden_sizes=(16, 16),
)
TINY_ALGO = {
    "mappo": TINY_PPO,
    "ippo": TINY_PPO,
    "qmix": TINY_QMIX,
    "vdn": TINY_QMIX,
    "matd3": TINY_MATD3,
}
"""Each algorithm's tiny hyper-parameters: seconds to compile, one update per few steps."""

TINY_RUNS = {
    # algo -> (env, episode limit, total steps, evaluation interval)
    "mappo": ("lbf:8x8-2p-2f-coop", 10, 96, 64),
    "ippo": ("lbf:8x8-2p-2f-coop", 10, 96, 64),
    "qmix": ("lbf:8x8-2p-2f-coop", 10, 64, 32),
    "vdn": ("lbf:8x8-2p-2f-coop", 10, 64, 32),
    "matd3": ("mabrax:hopper_3x1", 6, 48, 16),
}


def tiny_config(run_dir, algo: str = "mappo", **changes) -> RunConfig:
    """A run of ``algo`` that compiles and trains in seconds: tiny networks, a few chunks.

    MAPPO/IPPO and QMIX/VDN play lbf:8x8-2p-2f-coop with 10-step episodes, MATD3 hopper with
    6-step episodes; Prism at rank 4 (FuPS for MATD3); 2 seeds (1 for MATD3); no SND.
    """
    env, limit, total, interval = TINY_RUNS[algo]
    base = RunConfig(
        algo=algo,
        sharing=FuPS() if algo == "matd3" else Prism(rank=4),
        env=EnvConfig(id=env, episode_limit=limit),
        algo_config=TINY_ALGO[algo],
        num_seeds=2 if algo != "matd3" else 1,
        total_steps=total,
        eval_interval=interval,
        eval_episodes=4 if algo != "matd3" else 2,
        final_eval_episodes=4 if algo != "matd3" else 2,
        # SND adds a program to compile per config; the results tests measure it on one run.
        diversity_episodes=0,
        run_dir=str(run_dir),
    )
    return dataclasses.replace(base, **changes)


def read_metrics(run_dir) -> list[dict]:
    """The lines of a run's metrics.jsonl."""
    return [json.loads(line) for line in (Path(run_dir) / METRICS_FILE).read_text().splitlines()]


def stable(records: list[dict]) -> list[dict]:
    """Metrics records without their timing fields (equal across identical runs)."""
    return [
        {k: v for k, v in r.items() if k not in ("wall_time", "steps_per_second")} for r in records
    ]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """(config, run_dir, summary) of one finished tiny MAPPO + Prism run (192 steps, SND on).

    Shared by the tests that read a finished run (Trainer, ``eval``, the summary table);
    session-scoped so that each test worker trains it at most once.
    """
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    config = tiny_config(run_dir, total_steps=192, diversity_episodes=2)
    summary = Trainer(config, progress=False).run()
    return config, run_dir, summary
