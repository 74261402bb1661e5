"""One process per run directory (runlock), and training processes that end with their launcher."""

import os
import signal
import subprocess
import sys
import time

import pytest

from prism_marl.config import to_dict
from prism_marl.errors import RunLockedError
from prism_marl.results import write_json
from prism_marl.run import Trainer
from prism_marl.runlock import run_lock
from prism_marl.watchdog import PARENT_PID_VARIABLE
from tests.conftest import tiny_config


def test_a_held_run_directory_refuses_a_second_holder_until_released(tmp_path):
    with run_lock(tmp_path):
        assert (tmp_path / ".lock").read_text().startswith(f"{os.getpid()}@")
        message = rf"is being trained by process {os.getpid()}@"
        with pytest.raises(RunLockedError, match=message), run_lock(tmp_path):
            pass
    with run_lock(tmp_path):  # released when the holder's block ends
        pass


def test_training_a_locked_run_stops_before_writing(tmp_path):
    config = tiny_config(tmp_path / "run")
    (tmp_path / "run").mkdir()
    with run_lock(tmp_path / "run"), pytest.raises(RunLockedError):
        Trainer(config, resume=True, progress=False).run()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock"]


def test_cli_exits_5_on_one_line_when_the_run_is_locked(tmp_path, capsys):
    from prism_marl.cli import main

    run = tmp_path / "run"
    run.mkdir()
    write_json(run / "config.json", to_dict(tiny_config(run)))
    with run_lock(run):
        assert main(["train", "--resume", str(run), "--no-progress"]) == 5
    err = capsys.readouterr().err.strip()
    assert err.startswith("prism-marl: error: run-dir:") and "\n" not in err
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json"]


def test_a_config_json_that_is_not_a_run_config_is_one_line(tmp_path, capsys):
    from prism_marl.cli import main

    (tmp_path / "config.json").write_text("{}")
    assert main(["train", "--resume", str(tmp_path), "--no-progress"]) == 2
    assert "not a prism-marl run config" in capsys.readouterr().err


CHILD = """
import time
from prism_marl.watchdog import die_with_parent
die_with_parent()
print("armed", flush=True)
time.sleep(60)
"""
PARENT = f"""
import os, subprocess, sys, time
env = {{**os.environ, "{PARENT_PID_VARIABLE}": str(os.getpid())}}
pipe = subprocess.PIPE
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], env=env, stdout=pipe, text=True)
assert child.stdout.readline().strip() == "armed"
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_launched_training_process_ends_with_its_launcher():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # alive while its launcher is
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as stream:
                state = stream.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":  # killed, waiting to be reaped by init
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"child {child} outlived its launcher")
