"""The stall watchdog: a run whose process stops using the CPU ends with one line naming the
phase and the resume command, exit code 4, and resumes to the metrics of an uninterrupted run."""

import dataclasses
import json
import subprocess
import sys
import textwrap
import time

import pytest

from prism_marl.config import from_dict
from prism_marl.run import CONFIG_FILE, SUMMARY_FILE, Trainer, resume
from prism_marl.watchdog import EXIT_STALLED, Watchdog
from tests.conftest import read_metrics, stable


def supervised(work, seconds=0.5):
    """Run ``work`` under a watchdog whose exit only records the code; return the codes."""
    codes = []
    watchdog = Watchdog(seconds, "prism-marl train --resume runs/x", exit=codes.append)
    with watchdog.watching(), watchdog.phase("chunk 7"):
        work()
    return codes


def test_an_idle_process_is_ended_with_the_phase_and_resume_command(capsys):
    assert supervised(lambda: time.sleep(1.5)) == [EXIT_STALLED]
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert "phase chunk 7" in message
    assert message.endswith("resume with: prism-marl train --resume runs/x")


def test_a_busy_process_is_left_alone(capsys):
    def spin():
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            sum(range(1000))

    assert supervised(spin) == []
    assert capsys.readouterr().err == ""


def test_phases_nest_and_restore():
    watchdog = Watchdog(60)
    with watchdog.phase("init"):
        with watchdog.phase("evaluation"):
            assert watchdog.current == "evaluation"
        assert watchdog.current == "init"
    assert watchdog.current == "start-up"


# The second training chunk sleeps in a host callback, as a deadlocked XLA call would sit.
STALLING_TRAIN = textwrap.dedent(
    """
    import sys, time
    import jax
    from prism_marl import cli
    from prism_marl.algos.ppo import PPO

    calls = []
    original = PPO.train_chunk

    def stall():
        calls.append(1)
        if len(calls) == 2:
            time.sleep(600)

    def train_chunk(self, state, num_updates):
        state, metrics = original(self, state, num_updates)
        jax.debug.callback(stall)
        return state, metrics

    PPO.train_chunk = train_chunk
    sys.exit(cli.main(sys.argv[1:]))
    """
)


@pytest.mark.slow(minutes=1.5)
def test_a_stalled_run_exits_4_and_resumes_to_the_uninterrupted_metrics(tmp_path):
    run_dir = tmp_path / "stalled"
    args = [
        "train", "--algo", "mappo", "--sharing", "prism", "--sharing.rank", "4",
        "--env", "lbf:8x8-2p-2f-coop", "--env.episode-limit", "10", "--num-seeds", "1",
        "--total-steps", "96", "--eval-interval", "32", "--eval-episodes", "4",
        "--final-eval-episodes", "4", "--algo.num-envs", "4", "--algo.rollout-length", "8",
        "--algo.num-minibatches", "2", "--algo.num-epochs", "2", "--algo.hidden-sizes", "16",
        "16", "--algo.critic-hidden-sizes", "16", "--no-progress", "--stall-timeout", "4",
        "--diversity-episodes", "0",
        "--run-dir", str(run_dir),
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", STALLING_TRAIN, *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == EXIT_STALLED, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "phase chunk 1" in last and last.endswith(f"prism-marl train --resume {run_dir}")
    assert not (run_dir / SUMMARY_FILE).exists()
    assert [r["env_steps"] for r in read_metrics(run_dir)] == [0, 32]  # step 0 and chunk 0

    config = from_dict(json.loads((run_dir / CONFIG_FILE).read_text()))
    reference = tmp_path / "uninterrupted"
    uninterrupted = dataclasses.replace(config, run_dir=str(reference))
    expected = Trainer(uninterrupted, progress=False).run()
    summary = resume(run_dir, progress=False)
    assert stable(read_metrics(run_dir)) == stable(read_metrics(reference))
    assert summary["final_returns"] == expected["final_returns"]
