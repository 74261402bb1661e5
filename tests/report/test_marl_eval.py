"""One marl-eval file from results directories: its schema, and marl-eval's own pipeline."""

import json

import numpy as np
import pytest

from prism_marl import cli
from prism_marl.report.load import load_sources
from prism_marl.report.marl_eval import merge
from tests.report.conftest import EPISODES, FIGURE2, FIGURE4, STEPS


def check_schema(data):
    """marl-eval's documented format: env -> task -> algorithm -> run_i -> step_k / absolute."""
    for env, tasks in data.items():
        assert isinstance(env, str)
        for algorithms in tasks.values():
            runs_per_algorithm = {len(runs) for runs in algorithms.values()}
            assert len(runs_per_algorithm) == 1  # marl-eval takes the first algorithm's count
            for algorithm, runs in algorithms.items():
                assert "," not in algorithm  # marl-eval refuses commas in algorithm names
                for run, steps in runs.items():
                    assert run.startswith("run_")
                    keys = [k for k in steps if k != "absolute_metrics"]
                    assert keys == [f"step_{k}" for k in range(len(keys))]
                    counts = [steps[k]["step_count"] for k in keys]
                    assert counts == sorted(counts) and all(isinstance(c, int) for c in counts)
                    for key in keys:
                        metrics = {m: v for m, v in steps[key].items() if m != "step_count"}
                        assert metrics and all(isinstance(v, list) for v in metrics.values())
                    absolute = steps["absolute_metrics"]
                    assert absolute and all(isinstance(v, list) for v in absolute.values())


def test_merge_names_algorithms_by_backbone_method_and_budget(results_dirs):
    sources = load_sources([str(results_dirs[k]) for k in ("figure2", "figure4", "lone")])
    merged = merge(sources)
    check_schema(merged.data)
    lbf = merged.data["lbf"]["8x8-2p-2f-coop"]
    # figure2's finished runs, figure4's budgets; the lone run has no marl_eval.json
    expected = {"mappo_prism", "mappo_fups"}
    expected |= {f"mappo_{m}_{b}" for m, b in FIGURE4}
    assert set(lbf) == expected
    assert set(merged.data["smax"]["smacv2_5_units"]) == {"mappo_prism", "mappo_fups"}
    assert merged.runs == 4 + 4 and merged.seeds == 3 * 8
    prism = lbf["mappo_prism"]
    assert list(prism) == ["run_0", "run_1", "run_2"]
    assert [prism["run_0"][f"step_{k}"]["step_count"] for k in range(3)] == list(STEPS)
    assert len(prism["run_0"]["step_2"]["return"]) == EPISODES
    finals = FIGURE2[("prism", "lbf:8x8-2p-2f-coop")]
    absolute = [np.mean(prism[f"run_{s}"]["absolute_metrics"]["return"]) for s in range(3)]
    assert absolute == pytest.approx(finals)


def test_two_runs_of_one_setting_keep_their_run_ids(results_dirs):
    figure2 = str(results_dirs["figure2"])
    merged = merge(load_sources([figure2, figure2]))
    names = set(merged.data["lbf"]["8x8-2p-2f-coop"])
    assert "mappo_prism" not in names
    assert any(name.startswith("mappo_prism [prism__mappo__") for name in names)


def test_marl_evals_own_pipeline_reads_the_file(results_dirs, tmp_path):
    """marl-eval's data_process_pipeline and create_matrices_for_rliable on the merged file.

    id-marl-eval 0.0.4 pins pandas 1.4.4 and cannot install beside the lock (decision 0043):
    this runs where it was installed without its dependencies (it needs colorama only).
    """
    processing = pytest.importorskip(
        "marl_eval.utils.data_processing_utils", reason="id-marl-eval is not installed"
    )
    path = tmp_path / "marl_eval.json"
    argv = ["report", str(results_dirs["figure2"]), "--marl-eval", str(path)]
    assert cli.main(argv) == 0
    raw = json.loads(path.read_text())
    processed = processing.data_process_pipeline(raw, metrics_to_normalize=["return"])
    assert "extra" in processed, "marl-eval could not process the file"
    assert processed["extra"]["number_of_runs"] == 3
    assert processed["extra"]["number_of_steps"] == len(STEPS)
    matrices, over_time = processing.create_matrices_for_rliable(
        processed, environment_name="lbf", metrics_to_normalize=["return"]
    )
    # [runs, tasks] per algorithm: the best policies' mean returns, min-max normalised over
    # the task by marl-eval
    prism = matrices["mean_norm_return"]["mappo_prism"]
    fups = matrices["mean_norm_return"]["mappo_fups"]
    assert prism.shape == fups.shape == (3, 1)
    assert np.argmax(prism[:, 0]) == 1 and np.argmin(fups[:, 0]) == 0  # seeds 0.9 and 0.1
    assert over_time["mean_norm_return"]["mappo_prism"].shape == (3, 1, len(STEPS))


def test_report_command_writes_the_marl_eval_file(results_dirs, tmp_path, capsys):
    path = tmp_path / "deep" / "marl_eval.json"
    assert cli.main(["report", str(results_dirs["ablations"]), "--marl-eval", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"marl-eval: {path} (2 runs, 6 seeds)"
    check_schema(json.loads(path.read_text()))
    assert not (tmp_path / "report.md").exists()


@pytest.mark.parametrize("case", ["neither", "directory", "no-marl-eval-files"])
def test_bad_marl_eval_input_is_one_line_exit_2(results_dirs, tmp_path, capfd, case):
    argv = ["report", str(results_dirs["figure2"])]
    if case == "directory":
        argv += ["--marl-eval", str(tmp_path)]
    if case == "no-marl-eval-files":
        argv = ["report", str(results_dirs["lone"]), "--marl-eval", str(tmp_path / "x.json")]
    assert cli.main(argv) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--" in lines[0], lines
    assert not (tmp_path / "x.json").exists()
