"""Seeds spread over devices: one-line errors for impossible counts, and (slow, in a process
with two XLA host devices) the same metrics as one device, also across a resume that changes
the device count."""

import json
import os
import subprocess
import sys

import pytest

from prism_marl.cli import main
from prism_marl.devices import seed_sharding
from prism_marl.errors import ConfigError

TWO_DEVICES = r"""
import dataclasses, json, sys
import prism_marl
prism_marl.tune_cpu()
import jax
from prism_marl import run
from prism_marl.run import trainer as loop
from prism_marl.config import EnvConfig, RunConfig
from prism_marl.devices import device_count, place

placed = []
def recording_place(tree, sharding):
    tree = place(tree, sharding)
    placed.append(device_count(tree))
    return tree
loop.place = recording_place

root = sys.argv[1]
base = RunConfig(
    env=EnvConfig(id="lbf:6x6-2p-2f"), num_seeds=2, total_steps=3 * 2048,
    eval_interval=2048, eval_episodes=4, diversity_episodes=1, run_dir=root + "/one",
)
runs = {}
for name, devices in [("one", 1), ("two", 2), ("moved", 2)]:
    config = dataclasses.replace(base, run_dir=f"{root}/{name}")
    trainer = run.Trainer(config, progress=False, devices=devices)
    # "moved" trains one chunk on two devices, then resumes on one.
    runs[name] = trainer.run(max_chunks=1 if name == "moved" else None)
runs["moved"] = run.Trainer.from_run_dir(f"{root}/moved", progress=False, devices=1).run()
print(json.dumps({"devices": len(jax.local_devices()), "placed": placed}))
"""

TIMING = ("wall_time", "steps_per_second")


def test_device_counts_that_cannot_split_the_seeds_stop_on_one_line():
    assert seed_sharding(3) is None  # one local CPU device in the test process
    with pytest.raises(ConfigError, match=r"^devices: must be between 1 and the 1 local cpu"):
        seed_sharding(2, 2)


def test_train_with_too_many_devices_exits_2(tmp_path, capsys):
    argv = ["train", "--devices", "4", "--num-seeds", "2", "--run-dir", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "devices:" in err
    assert not (tmp_path / "r").exists()


def records(path):
    lines = [json.loads(line) for line in path.joinpath("metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in TIMING} for line in lines]


@pytest.mark.slow
def test_two_devices_train_as_one_and_resume_on_another_count(tmp_path):
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    done = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["devices"] == 2
    # one: 1 device; two: 2; moved: 2, then 1 after the resume.
    assert facts["placed"] == [1, 2, 2, 1]
    one = records(tmp_path / "one")
    for name in ("two", "moved"):
        other = records(tmp_path / name)
        assert len(other) == len(one) == 2 * 4
        for mine, theirs in zip(one, other, strict=True):
            assert mine.keys() == theirs.keys()
            for key, value in mine.items():
                assert theirs[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (name, key)
