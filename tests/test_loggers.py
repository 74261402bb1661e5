"""TensorBoard's and W&B's scalars, W&B as an optional extra, and an offline W&B run read back."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prism_marl import cli
from prism_marl.loggers import WANDB_FILE, WandbOptions, scalars
from prism_marl.run import Trainer
from tests.conftest import read_metrics, tiny_config


def test_scalars_are_the_numbers_of_every_seed_and_the_mean_return():
    records = [
        {"seed": 0, "env_steps": 64, "eval_return": 0.5, "loss/policy": -1, "eval/x": [1, 2]},
        {"seed": 1, "env_steps": 64, "eval_return": 0.7, "loss/policy": -2},
    ]
    assert scalars(records) == {
        "seed_0/eval_return": 0.5,
        "seed_0/loss/policy": -1,
        "seed_1/eval_return": 0.7,
        "seed_1/loss/policy": -2,
        "mean/eval_return": pytest.approx(0.6),
    }


def test_options_become_train_flags():
    assert WandbOptions("p").flags() == ["--wandb-project", "p"]
    options = WandbOptions("p", entity="e", group="g", tags=("a", "b"))
    assert options.flags() == [
        "--wandb-project",
        "p",
        "--wandb-entity",
        "e",
        "--wandb-group",
        "g",
        "--wandb-tags",
        "a,b",
    ]


def test_wandb_is_imported_only_for_a_run_that_asks_for_it():
    code = (
        "import sys, prism_marl.run, prism_marl.cli, prism_marl.cli.train, prism_marl.sweep; "
        "print('wandb' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--wandb-project", "p"], "`wandb` extra"),
        (["train", "--wandb-group", "g"], "--wandb-group: needs --wandb-project"),
        (["sweep", "experiments/figure2_homogeneous.toml", "--wandb-project", "p"], "`wandb`"),
    ],
)
def test_missing_wandb_is_one_line_exit_2(tmp_path, monkeypatch, capfd, argv, needle):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    monkeypatch.chdir(tmp_path)
    if argv[0] == "sweep":
        argv = [argv[0], str(Path(__file__).parents[1] / argv[1]), *argv[2:]]
    code = cli.main([*argv, *(["--run-dir", str(tmp_path / "run")] if argv[0] == "train" else [])])
    assert code == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing trained


def inspect(path: Path) -> list[dict]:
    """The records of an offline W&B run, read by W&B's own reader (``wandb leet inspect``)."""
    wandb = shutil.which("wandb", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [wandb, "leet", "inspect", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.slow(minutes=1)
def test_offline_wandb_run_holds_what_metrics_jsonl_holds(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    (tmp_path / "wandb-dir").mkdir()
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    options = WandbOptions("prism-tests", group="tests", tags=("tiny", "offline"))
    summary = Trainer(tiny_config(run_dir), progress=False, wandb=options).run()

    (found,) = list((tmp_path / "wandb-dir").glob("wandb/offline-run-*/run-*.wandb"))
    records = inspect(found)
    run = next(r["run"] for r in records if r["type"] == "run")
    run_id = json.loads((run_dir / WANDB_FILE).read_text())["id"]
    assert (run["run_id"], run["project"], run["run_group"]) == (run_id, "prism-tests", "tests")
    assert run["tags"] == ["tiny", "offline"]
    config = json.loads((run_dir / "config.json").read_text())
    logged_config = {k: v for k, v in run["config"]["update"].items() if k != "_wandb"}
    assert logged_config == config

    # Every evaluation point, step 0 included, with TensorBoard's keys and metrics.jsonl's values.
    history = {r["history"]["step"]["num"]: r["history"]["item"] for r in records if "history" in r}
    metrics = read_metrics(run_dir)
    steps = sorted({r["env_steps"] for r in metrics})
    assert sorted(int(s) for s in history) == steps
    for step in steps:
        expected = scalars([r for r in metrics if r["env_steps"] == step])
        logged = {k: v for k, v in history[step].items() if not k.startswith("_")}
        assert logged.keys() == expected.keys()
        for key, value in expected.items():
            assert logged[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key

    final = {}
    for record in records:
        if record["type"] == "summary":
            final.update(record["summary"].get("update", {}))
    for key in ("final_return_mean", "final_return_iqm", "absolute_return_mean"):
        assert final[key] == pytest.approx(summary[key], rel=1e-12)
    assert final["final_returns"] == pytest.approx(summary["final_returns"], rel=1e-12)
    assert next(r for r in records if r["type"] == "exit")["exit"].get("exit_code", 0) == 0


def test_tags_before_the_sweep_file_leave_the_file_alone():
    from prism_marl.cli import build_parser

    args = build_parser().parse_args(["sweep", "--wandb-tags", "a,b", "experiments/x.toml"])
    assert args.wandb_tags == ("a", "b")
    assert "experiments/x.toml" in vars(args).values()
