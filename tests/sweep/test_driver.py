"""The sweep driver: retries by exit status, the index, idempotence, and a real local sweep."""

import json

import numpy as np
import pytest

from prism_marl.cli import main
from prism_marl.config import RunConfig, to_dict
from prism_marl.results import read_jsonl
from prism_marl.sharing import SePS
from prism_marl.sweep import SweepOptions, run_sweep
from prism_marl.sweep.experiment import config_hash
from prism_marl.sweep.launch import Outcome
from prism_marl.sweep.reuse import finished_runs
from tests.conftest import read_metrics, stable
from tests.sweep.conftest import tiny_experiment


class ScriptedExecutor:
    """Ends each attempt with the next exit code scripted for its run (no training)."""

    slots = 1

    def __init__(self, results, codes):
        self.results, self.started, self.jobs = results, [], []
        self.codes = {name: list(values) for name, values in codes.items()}

    def start(self, job):
        self.started.append(job.run_id)
        self.jobs.append(job)
        return (job.run_id, len(self.started))

    def wait(self, handles, timeout):
        run_id, _ = handles[0]
        code = self.codes[run_id.split("__")[0]].pop(0)
        if code == 0:  # a finished run leaves its summary
            (self.results / run_id).mkdir(parents=True, exist_ok=True)
            (self.results / run_id / "summary.json").write_text("{}")
        return [(handles[0], Outcome(run_id, code, 1.5, f"exit {code}" if code else ""))]

    def close(self):
        pass


def scripted_sweep(tmp_path, monkeypatch, codes, retries=2, wandb=None):
    import prism_marl.sweep as sweep

    results = tmp_path / "results"
    executor = ScriptedExecutor(results, codes)
    monkeypatch.setattr(sweep, "_make_executor", lambda options, where: executor)
    path = tiny_experiment(tmp_path / "tiny.toml")
    options = SweepOptions(results=str(results), retries=retries, wandb=wandb)
    status = run_sweep(str(path), options)
    index = {r["run_id"].split("__")[0]: r for r in read_jsonl(results / "index.jsonl")}
    return status, index, executor


@pytest.mark.parametrize(
    ("fups_codes", "status", "attempts"),
    [
        ([1, 4, 0], "finished", 3),  # a crash and a stall are retried
        ([1, 1, 1], "failed", 3),  # until the attempts run out (1 + retries)
        ([2], "failed", 1),  # bad input fails the same way every time
        ([3], "diverged", 1),  # a diverged run would diverge again from its checkpoint
        ([5, 0], "finished", 2),  # locked by an orphan that has since died
    ],
)
def test_retries_follow_the_exit_status(tmp_path, monkeypatch, fups_codes, status, attempts):
    code, index, _ = scripted_sweep(tmp_path, monkeypatch, {"fups": fups_codes, "prism": [0]})
    entry = index["fups"]
    assert (entry["status"], entry["attempts"]) == (status, attempts)
    assert entry["exit_code"] == fups_codes[attempts - 1]
    assert entry["wall_seconds"] == pytest.approx(1.5 * attempts)
    assert entry["last_error"] == ("" if status == "finished" else f"exit {fups_codes[-1]}")
    assert index["prism"]["status"] == "finished"
    assert code == (0 if status == "finished" else 1)
    assert entry["origin"]["method"] == "fups" and entry["origin"]["num_seeds"] == 2


def test_a_second_sweep_only_runs_what_did_not_finish(tmp_path, monkeypatch):
    _, index, _ = scripted_sweep(tmp_path, monkeypatch, {"fups": [1], "prism": [0]}, retries=0)
    assert (index["fups"]["status"], index["prism"]["status"]) == ("failed", "finished")
    _, index, executor = scripted_sweep(tmp_path, monkeypatch, {"fups": [0], "prism": []})
    assert [s.split("__")[0] for s in executor.started] == ["fups"]
    assert index["fups"]["attempts"] == 2 and index["prism"]["attempts"] == 1


def test_a_diverged_run_is_not_run_again(tmp_path, monkeypatch):
    _, index, _ = scripted_sweep(tmp_path, monkeypatch, {"fups": [3], "prism": [0]})
    _, index, executor = scripted_sweep(tmp_path, monkeypatch, {"fups": [], "prism": []})
    assert executor.started == [] and index["fups"]["status"] == "diverged"


def test_bad_input_exits_2_on_one_line_and_writes_nothing(tmp_path, capsys):
    path = tiny_experiment(tmp_path / "bad.toml", **{'sharing = "fups"': 'sharing = "shared"'})
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"prism-marl: error: {path}: methods[0].sharing: unknown name")
    assert "\n" not in err and not results.exists()
    assert main(["sweep", str(tiny_experiment(tmp_path / "t.toml")), "--only", "qmix"]) == 2
    assert "--only: no run" in capsys.readouterr().err


def test_dry_run_lists_runs_and_writes_nothing(tmp_path, capsys):
    path = tiny_experiment(tmp_path / "tiny.toml")
    results = tmp_path / "results"
    assert main(["sweep", str(path), "--dry-run", "--results", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("fups__mappo__lbf-8x8-2p-2f-coop__quick__")
    assert lines[2].split()[1:4] == ["2", "64", "16"] and lines[2].endswith("new")
    assert lines[-1].startswith("2 runs; about") and not results.exists()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The tiny experiment swept by the local executor, in separate training processes."""
    root = tmp_path_factory.mktemp("sweep")
    path = tiny_experiment(root / "tiny.toml")
    results = root / "results"
    status = main(["sweep", str(path), "--results", str(results), "--workers", "2"])
    return status, path, results


def test_local_sweep_trains_every_run_in_its_own_process(local_sweep):
    status, _, results = local_sweep
    assert status == 0
    index = read_jsonl(results / "index.jsonl")
    assert [(r["status"], r["attempts"], r["exit_code"]) for r in index] == [("finished", 1, 0)] * 2
    for record in index:
        run = results / record["run_id"]
        summary = json.loads((run / "summary.json").read_text())
        assert summary["sharing"] == record["origin"]["sharing"] and summary["num_seeds"] == 2
        assert np.all(np.isfinite(summary["final_returns"]))
        assert [r["env_steps"] for r in read_metrics(run)] == [0, 0, 32, 32, 64, 64]
        assert "final return (mean)" in (run / "train.log").read_text()  # its printed summary
        assert json.loads((run / "config.json").read_text())["total_steps"] == 64
    assert json.loads((results / "sweep.json").read_text())["scale"] == "quick"


def test_sweeping_again_skips_finished_runs(local_sweep, capsys):
    _, path, results = local_sweep
    before = (results / "index.jsonl").read_text()
    metrics = {p: p.read_text() for p in results.glob("*/metrics.jsonl")}
    assert main(["sweep", str(path), "--results", str(results)]) == 0
    assert (results / "index.jsonl").read_text() == before
    assert {p: p.read_text() for p in results.glob("*/metrics.jsonl")} == metrics
    assert "2/2 finished" in capsys.readouterr().err


def test_sweep_runs_match_a_run_trained_in_process(local_sweep, tmp_path):
    """A sweep's run is the run `prism-marl train` would make of the same config."""
    from prism_marl.run import Trainer
    from prism_marl.sweep.experiment import load_experiment

    _, path, results = local_sweep
    planned = load_experiment(path).runs("quick")[1]
    import dataclasses

    config = dataclasses.replace(planned.config, run_dir=str(tmp_path / "direct"))
    Trainer(config, progress=False).run()
    assert stable(read_metrics(tmp_path / "direct")) == stable(
        read_metrics(results / planned.run_id)
    )


def test_runs_log_to_wandb_grouped_by_the_sweeps_name(tmp_path, monkeypatch):
    from prism_marl.loggers import WandbOptions
    from prism_marl.sweep import launch

    options = WandbOptions("p", tags=("t",))
    _, _, executor = scripted_sweep(
        tmp_path, monkeypatch, {"fups": [0], "prism": [0]}, wandb=options
    )
    flags = ("--wandb-project", "p", "--wandb-group", "tiny-quick", "--wandb-tags", "t")
    assert [job.train_flags for job in executor.jobs] == [flags, flags]
    # The flags reach the training process, after the run's own.
    commands = []

    def run(command, **kwargs):
        commands.append(command)
        return launch.subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(launch.subprocess, "run", run)
    job = launch.Job("r", {}, train_flags=tuple(WandbOptions("p", group="mine").flags()))
    launch.launch(job, tmp_path / "r")
    assert commands[0][-4:] == ["--wandb-project", "p", "--wandb-group", "mine"]


def confirm_experiment(path, confirm_run=""):
    """The tiny experiment with a ``confirm`` scale: quick's runs under new ids."""
    scale = f'[scales.confirm]\nextends = "quick"\n{confirm_run}\n\n[scales.full]'
    return tiny_experiment(path, **{"[scales.full]": scale})


def test_reuse_copies_runs_of_equal_config_instead_of_training(local_sweep, tmp_path, monkeypatch):
    import prism_marl.sweep as sweep

    _, _, quick = local_sweep
    path = confirm_experiment(tmp_path / "tiny.toml")
    results = tmp_path / "confirm"
    executor = ScriptedExecutor(results, {})
    monkeypatch.setattr(sweep, "_make_executor", lambda options, where: executor)
    options = SweepOptions(scale="confirm", results=str(results), reuse=(str(quick),))
    assert run_sweep(str(path), options) == 0
    assert executor.started == []  # nothing trained
    index = read_jsonl(results / "index.jsonl")
    assert [r["status"] for r in index] == ["finished"] * 2
    for record in index:
        source = quick / record["reused_from"].rsplit("/", 1)[1]
        assert source.name.replace("__quick__", "__confirm__") == record["run_id"]
        run = results / record["run_id"]
        assert read_metrics(run) == read_metrics(source)
        assert not (run / ".lock").exists() and (run / "summary.json").exists()
        config = json.loads((run / "config.json").read_text())
        assert config["run_dir"] == str(run)
        assert {**config, "run_dir": ""} == {
            **json.loads((source / "config.json").read_text()),
            "run_dir": "",
        }


def test_reuse_never_copies_a_run_of_another_config(local_sweep, tmp_path, monkeypatch, capsys):
    import prism_marl.sweep as sweep

    _, _, quick = local_sweep
    path = confirm_experiment(tmp_path / "tiny.toml", "run = { seed = 100 }")
    results = tmp_path / "confirm"
    flags = ["sweep", str(path), "--scale", "confirm", "--results", str(results)]
    assert main([*flags, "--dry-run", "--reuse", str(quick)]) == 0
    assert [line.split()[-1] for line in capsys.readouterr().out.splitlines()[1:3]] == ["new"] * 2
    executor = ScriptedExecutor(results, {"fups": [0], "prism": [0]})
    monkeypatch.setattr(sweep, "_make_executor", lambda options, where: executor)
    options = SweepOptions(scale="confirm", results=str(results), reuse=(str(quick),))
    assert run_sweep(str(path), options) == 0
    assert len(executor.started) == 2
    assert all(r["reused_from"] == "" for r in read_jsonl(results / "index.jsonl"))


def test_dry_run_shows_reused_runs_and_a_missing_directory_fails_on_one_line(
    local_sweep, tmp_path, capsys
):
    _, _, quick = local_sweep
    path = confirm_experiment(tmp_path / "tiny.toml")
    flags = ["sweep", str(path), "--scale", "confirm", "--results", str(tmp_path / "r")]
    assert main([*flags, "--dry-run", "--reuse", str(quick)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines[1:3]] == ["reused"] * 2
    assert lines[-1].startswith("2 runs; about 0m00s left")
    assert main([*flags, "--reuse", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prism-marl: error: --reuse: ") and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_reuse_finds_a_prepared_run_by_its_planned_hash(tmp_path):
    """SePS writes its prepared form (``prepared_clusters``) to config.json, so only the
    index's planned hash names the config it was planned as; config.json's own hash counts too
    (an index written by an older version, whose hashes differ)."""
    planned = RunConfig(sharing=SePS())
    prepared = RunConfig(sharing=SePS(prepared_clusters=2))
    run = tmp_path / "seps-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(to_dict(prepared)))
    (run / "summary.json").write_text("{}")
    unfinished = tmp_path / "other"
    unfinished.mkdir()
    (unfinished / "config.json").write_text(json.dumps(to_dict(RunConfig())))
    index = [
        {"run_id": "seps-run", "config_hash": config_hash(planned)},
        {"run_id": "other", "config_hash": config_hash(RunConfig())},
    ]
    (tmp_path / "index.jsonl").write_text("".join(json.dumps(e) + "\n" for e in index))
    found = finished_runs((str(tmp_path),))
    assert found == {config_hash(planned): run, config_hash(prepared): run}
