"""The fair protocol's tuning selection (report/tuning.py) on a hand-made tuning sweep.

Each run's curve is a straight line per seed from the task's untrained return r to its final
return f over three evenly spaced points, so its area is (r + mean f) / 2 (conftest.metrics).
"""

import dataclasses
import json

import pytest

from prism_marl.config import to_dict
from prism_marl.report import aggregate, write_report
from prism_marl.report.load import load_sources
from prism_marl.report.tuning import TIE_MARGIN, select_settings
from prism_marl.results import write_json, write_jsonl
from prism_marl.sweep.index import IndexEntry, save_index
from tests.conftest import tiny_config
from tests.report.conftest import LBF, SMAX, metrics, origin, summary, sweep_dir

PRESET, FAST = "mappo", "mappo-lr1e-3"
# (method, setting, task) -> every seed's final return; areas (r + f) / 2 with r = 0.1 on LBF,
# 0 on SMAX. FuPS at the preset: LBF 0.3, SMAX 0.2 (the denominators).
FINALS = {
    ("fups", PRESET, LBF): 0.5,  # 0.3 / 0.3 = 1
    ("fups", PRESET, SMAX): 0.4,  # 1: score 1
    ("fups", FAST, LBF): 0.5,  # 1
    ("fups", FAST, SMAX): 0.42,  # 0.21 / 0.2 = 1.05: score 1.025, 0.025 above the preset
    ("prism", PRESET, LBF): 0.3,  # 0.2 / 0.3 = 0.6667
    ("prism", PRESET, SMAX): 0.4,  # 1: score 0.8333
    ("prism", FAST, LBF): 0.3,  # 0.6667
    ("prism", FAST, SMAX): 0.405,  # 1.0125: score 0.8396, within 0.01 of the preset's
    ("snp", PRESET, LBF): 0.5,  # snp lacks its other setting: no selection yet
    ("snp", PRESET, SMAX): 0.4,
}


@pytest.fixture(scope="module")
def tuning_dir(tmp_path_factory):
    results, entries = sweep_dir(tmp_path_factory.mktemp("tuning"), "tuning")
    for (method, setting, task), final in FINALS.items():
        run_id = f"{method}__{setting}__{task}"
        config = tiny_config(run_id)
        lr = 1e-3 if setting == FAST else 5e-4
        # A per-task field that differs between tasks alike in both settings is no change.
        envs = 8 if task == LBF else 4
        algo = dataclasses.replace(config.algo_config, lr=lr, num_envs=envs)
        config = dataclasses.replace(config, algo_config=algo)
        write_json(results / run_id / "config.json", to_dict(config))
        write_jsonl(results / run_id / "metrics.jsonl", metrics(task, [final] * 3, method))
        write_json(results / run_id / "summary.json", summary(task, [final] * 3))
        entries[run_id] = IndexEntry(
            run_id,
            "0" * 12,
            "finished",
            1,
            2.0,
            0,
            "",
            {**origin(method, task), "backbone": setting},
        )
    save_index(results, entries)
    return results


def group(path):
    (only,) = aggregate.make_groups(load_sources([str(path)]))
    return only


def test_scores_are_areas_over_fups_at_the_preset_averaged_over_tasks(tuning_dir):
    selection = select_settings(group(tuning_dir), PRESET)
    scores = {(s.method, s.setting): s for s in selection.scores}
    assert scores[("fups", PRESET)].score == pytest.approx(1.0)
    assert scores[("fups", FAST)].relative[SMAX] == pytest.approx(1.05)
    assert scores[("fups", FAST)].score == pytest.approx(1.025)
    assert scores[("prism", PRESET)].score == pytest.approx((0.2 / 0.3 + 1.0) / 2)
    assert scores[("prism", FAST)].score == pytest.approx((0.2 / 0.3 + 1.0125) / 2)
    assert scores[("snp", FAST)].score is None


def test_selection_takes_the_best_unless_the_preset_is_within_the_margin(tuning_dir):
    selection = select_settings(group(tuning_dir), PRESET)
    assert TIE_MARGIN == 0.01
    # FuPS: 1.025 beats 1 by more than 0.01. Prism: 0.8396 beats 0.8333 by 0.006, a tie
    # that the preset wins. SNP: a setting without a score, so nothing is selected.
    assert selection.chosen == {"prism": PRESET, "fups": FAST, "snp": None}
    assert selection.changes == {"fups": {"lr": 1e-3}, "prism": {}}
    assert [s.setting for s in selection.scores if s.selected] == [PRESET, FAST]
    assert select_settings(group(tuning_dir), "mappo-absent") is None


def test_the_report_writes_the_table_and_the_json(tuning_dir, tmp_path):
    path = write_report([str(tuning_dir)], str(tmp_path), command="test", tuning_preset=PRESET)
    text = path.read_text()
    assert "## Tuning selection: tuning-quick" in text
    assert "| fups | mappo-lr1e-3 | 1 | 1.05 | 1.025 | ✓ (lr = 0.001) |" in text
    record = json.loads((tmp_path / "tuning-quick-tuning-selection.json").read_text())
    assert record["methods"]["fups"]["selected"] == FAST
    assert record["methods"]["fups"]["algo_fields"] == {"lr": 1e-3}
    assert record["methods"]["snp"]["selected"] is None
