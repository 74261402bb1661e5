"""Reading results directories: sweeps, run directories, and what is missing."""

import pytest

from prism_marl.errors import ConfigError
from prism_marl.report.load import load_source
from tests.report.conftest import LBF


def test_sweep_runs_with_their_origin_and_status(results_dirs):
    source = load_source(str(results_dirs["figure2"]))
    assert (source.kind, source.experiment, source.scale) == ("sweep", "figure2", "quick")
    runs = {run.run_id: run for run in source.runs}
    assert len(runs) == 7
    prism = runs[f"prism__mappo__{LBF}__quick"]
    assert (prism.method, prism.backbone, prism.task, prism.budget) == ("prism", "mappo", LBF, None)
    assert prism.complete and prism.final_returns.tolist() == [0.2, 0.9, 0.5]
    assert prism.initial_returns().tolist() == pytest.approx([0.1] * 3)
    assert set(prism.masks) == {"layer 0", "layer 1"}
    steps, values = prism.metric("prism/effective_rank")
    assert steps.tolist() == [100, 200] and [len(v) for v in values] == [3, 3]
    # list-valued metrics are not curves
    assert prism.metric("prism/effective_rank_per_agent")[0].size == 0


def test_unfinished_runs_are_kept_with_their_status(results_dirs):
    runs = {run.run_id: run for run in load_source(str(results_dirs["figure2"])).runs}
    failed = runs["nops__mappo__lbf__quick"]
    assert not failed.complete
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.last_error == "RuntimeError: boom"
    assert failed.metric("eval_return")[0].tolist() == [0, 100]
    pending = runs["snp__mappo__lbf__quick"]
    assert (pending.status, pending.last_error) == ("pending", "no run directory")
    assert pending.records == ()
    lost = runs["seps__mappo__lbf__quick"]
    assert lost.status == "finished without summary.json" and not lost.complete


def test_a_train_run_directory_is_one_run(results_dirs):
    source = load_source(str(results_dirs["lone"]))
    assert source.kind == "run"
    (run,) = source.runs
    assert (run.method, run.backbone, run.task, run.experiment) == ("prism", "mappo", LBF, "runs")
    assert run.complete and run.final_returns.tolist() == [0.7, 0.7]
    parent = load_source(str(results_dirs["lone"].parent))
    assert parent.kind == "runs" and [r.run_id for r in parent.runs] == ["mine"]


def test_missing_or_empty_directories_are_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="RESULTS_DIR: .* is not a directory"):
        load_source(str(tmp_path / "nowhere"))
    (tmp_path / "empty" / "child").mkdir(parents=True)
    with pytest.raises(ConfigError, match="RESULTS_DIR: .* holds no runs"):
        load_source(str(tmp_path / "empty"))


def test_a_corrupt_file_is_bad_input(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text("{not json")
    with pytest.raises(ConfigError, match="RESULTS_DIR: cannot read"):
        load_source(str(run))
