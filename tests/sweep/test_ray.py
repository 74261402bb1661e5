"""The Ray executor on a real local Ray (``ray.init(num_cpus=2)``): the results of an
in-process run, finished runs' files sent back when the results directory is not shared, and a
sweep that completes when a Ray worker is killed mid-run."""

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from prism_marl.cli import main
from prism_marl.results import read_jsonl
from tests.conftest import read_metrics, stable
from tests.sweep.conftest import tiny_experiment

pytestmark = pytest.mark.slow(minutes=1.5)


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def sweep(path, results, *extra):
    return main(["sweep", str(path), "--results", str(results), "--executor", "ray", *extra])


def test_ray_sweep_matches_a_run_trained_in_process(ray_cluster, tmp_path):
    """A run swept as a Ray task whose files come back to the driver (the shared-directory
    path is the next test's) has the metrics of the same config trained in this process."""
    from prism_marl.run import Trainer
    from prism_marl.sweep.experiment import load_experiment

    path = tiny_experiment(tmp_path / "tiny.toml")
    returned = tmp_path / "returned"
    assert sweep(path, returned, "--only", "prism", "--no-shared-results") == 0
    (entry,) = read_jsonl(returned / "index.jsonl")
    assert (entry["status"], entry["attempts"]) == ("finished", 1)
    run = returned / entry["run_id"]
    assert (run / "summary.json").exists() and (run / "checkpoints").is_dir()
    (planned,) = [r for r in load_experiment(path).runs("quick") if r.run_id == entry["run_id"]]
    direct = dataclasses.replace(planned.config, run_dir=str(tmp_path / "direct"))
    Trainer(direct, progress=False).run()
    assert stable(read_metrics(run)) == stable(read_metrics(tmp_path / "direct"))


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stream:
        return int(stream.read().rsplit(")", 1)[1].split()[1])


def test_a_killed_worker_is_retried_and_its_run_resumes(ray_cluster, tmp_path):
    path = tiny_experiment(tmp_path / "long.toml", steps=1600, evaluations=25)
    results = tmp_path / "results"
    killed: list[int] = []

    def kill_the_worker_after_a_checkpoint():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            for run in results.glob("prism__*"):
                steps = [p for p in (run / "checkpoints").glob("*") if p.name.isdigit()]
                holder = (run / ".lock").read_text().split("@")[0] if steps else ""
                if holder.strip():
                    worker = parent_of(int(holder))
                    os.kill(worker, signal.SIGKILL)
                    killed.append(worker)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_worker_after_a_checkpoint)
    killer.start()
    status = sweep(path, results, "--only", "prism")
    killer.join()
    assert killed, "no worker was killed"
    (entry,) = read_jsonl(results / "index.jsonl")
    assert (status, entry["status"]) == (0, "finished")
    run = results / entry["run_id"]
    # Two attempts in the run's log, and the metrics of one uninterrupted run: every
    # evaluation point once per seed, the ones before the kill kept from the first attempt.
    assert (run / "train.log").read_text().count("=== attempt") == 2
    steps = [r["env_steps"] for r in read_metrics(run)]
    assert steps == [s for s in range(0, 1601, 64) for _ in range(2)]


def test_starting_ray_after_xla_warns_of_no_fork_deadlock(tmp_path):
    """Planning builds environments, so XLA's threads run before the executor starts a local
    Ray; jax's fork warning must not reach the user for Ray's fork-and-exec of its processes."""
    script = (
        "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()\n"
        "from pathlib import Path\n"
        "from prism_marl.sweep.executors import RayExecutor\n"
        "RayExecutor(Path('results'), 1, num_cpus=1).close()\n"
        "print('closed')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "closed", result.stderr
    assert "os.fork()" not in result.stderr, result.stderr
