"""The report's numbers from small results directories, against values computed by hand."""

import dataclasses
import json

import pytest

from prism_marl.config import from_dict
from prism_marl.report import aggregate, stats
from prism_marl.report.load import load_source, load_sources
from tests.report.conftest import LBF, SMAX

LBF_TASK, SMAX_TASK = f"{LBF} / mappo", f"{SMAX} / mappo"
FEW = stats.Bootstrap(resamples=200)


@pytest.fixture(scope="module")
def figure2(results_dirs):
    (group,) = aggregate.make_groups([load_source(str(results_dirs["figure2"]))])
    return group, aggregate.final_cells(group, FEW)


def test_final_cells_hand_values(figure2):
    group, cells = figure2
    assert group.name == "figure2-quick"
    by_key = {(c.method, c.task): c for c in cells}
    assert set(by_key) == {(m, t) for m in ("prism", "fups") for t in (LBF_TASK, SMAX_TASK)}
    prism = by_key[("prism", LBF_TASK)]
    # rliable's IQM cuts floor(3/4) = 0 of three seeds: the mean
    assert prism.iqm.point == pytest.approx(1.6 / 3)
    assert prism.mean.point == pytest.approx(1.6 / 3)
    assert prism.iqm.low <= prism.iqm.point <= prism.iqm.high
    assert prism.mean.low <= prism.mean.point <= prism.mean.high
    assert (prism.eval_mode, prism.greedy_mean, prism.sampled_mean) == (
        "sampled",
        pytest.approx(0.2),
        pytest.approx(1.6 / 3),
    )
    assert by_key[("fups", SMAX_TASK)].win_rate == 0.25
    assert by_key[("fups", LBF_TASK)].eval_mode is None
    assert [c.method for c in cells[:2]] == ["prism", "fups"]  # Prism first in each task


def test_normalisation_and_aggregate(figure2):
    group, cells = figure2
    random = aggregate.random_returns(group.runs)
    assert random == {LBF_TASK: pytest.approx(0.1), SMAX_TASK: pytest.approx(0.0)}
    scales = {n.task: n for n in aggregate.normalisations(cells, random)}
    assert scales[LBF_TASK].best == pytest.approx(1.6 / 3)
    assert scales[SMAX_TASK].best_method == "prism"
    rows = {r.method: r for r in aggregate.aggregate(cells, list(scales.values()), FEW)}
    # FuPS: LBF (x - 0.1) / (1.6/3 - 0.1) and SMAX x / (1.9/3), six seeds pooled
    lbf = sorted((x - 0.1) / (1.6 / 3 - 0.1) for x in (0.1, 0.3, 0.2))  # 0, 0.46, 0.23
    smax = sorted(x / (1.9 / 3) for x in (0.6, 0.5, 0.4))
    fups = rows["fups"].estimates
    assert fups["mean"].point == pytest.approx(sum(lbf + smax) / 6)
    assert fups["median"].point == pytest.approx(sum(lbf + smax) / 6)  # of two task means
    # IQM: six runs pooled, one cut from each end
    assert fups["IQM"].point == pytest.approx(sum(sorted(lbf + smax)[1:5]) / 4)
    assert fups["optimality gap"].point == pytest.approx(sum(1 - x for x in lbf + smax) / 6)
    assert rows["fups"].tasks == 2 and rows["fups"].runs == 6
    assert rows["prism"].estimates["mean"].point == pytest.approx(1.0)  # best on both tasks
    for row in rows.values():
        for estimate in row.estimates.values():
            assert estimate.low <= estimate.point <= estimate.high
    profiles = {p.method: p.profile for p in aggregate.profiles(list(rows.values()), FEW)}
    taus = profiles["fups"].taus
    assert len(taus) == aggregate.PROFILE_POINTS and taus[0] <= 0.0 and taus[-1] >= 1.0
    assert list(profiles["prism"].taus) == list(taus)
    assert profiles["fups"].point[0] == pytest.approx(5 / 6)  # all but the 0 exceed tau = 0
    assert profiles["fups"].point[-1] == 0.0


def test_probability_of_improvement(figure2):
    _, cells = figure2
    (fups,) = aggregate.improvements(cells, FEW)
    # LBF: 0.2 beats 0.1, ties 0.2, loses to 0.3; 0.9 and 0.5 beat all: 7.5/9
    # SMAX: each 0.6 ties 0.6 and beats 0.5, 0.4; 0.7 beats all: 8/9
    assert fups.baseline == "fups" and fups.tasks == 2
    assert fups.estimate.point == pytest.approx((7.5 / 9 + 8 / 9) / 2)


def test_unfinished_runs_have_curves_up_to_where_they_reach(figure2):
    group, _ = figure2
    curves = {(c.method, c.task): c for c in aggregate.curves(group, "eval_return", FEW)}
    nops = curves[("nops", LBF_TASK)]
    assert nops.steps.tolist() == [0, 100] and not nops.complete
    prism = curves[("prism", LBF_TASK)]
    assert prism.steps.tolist() == [0, 100, 200] and prism.complete
    assert prism.iqm[0] == pytest.approx(0.1)
    assert ("snp", LBF_TASK) not in curves  # never started: no records


def test_budget_retention(results_dirs):
    groups = aggregate.make_groups([load_source(str(results_dirs["figure4"]))])
    by_budget = {g.budget: g for g in groups}
    assert set(by_budget) == {"full", "half"}
    full = aggregate.final_cells(by_budget["full"], FEW)
    half = aggregate.final_cells(by_budget["half"], FEW)
    random = aggregate.random_returns([*by_budget["full"].runs, *by_budget["half"].runs])
    kept = {r.method: r for r in aggregate.retentions(full, half, random)}
    assert kept["prism"].mean == pytest.approx((0.5 - 0.1) / (0.8 - 0.1))
    assert kept["fups"].mean == pytest.approx(1.0)


def test_two_runs_of_one_setting_are_not_pooled(results_dirs):
    lone = str(results_dirs["lone"])
    (group,) = aggregate.make_groups(load_sources([lone, lone]))
    assert [run.method for run in group.runs] == ["prism [mine]", "prism [mine]"]


def test_curve_areas_hand_values(figure2):
    group, _ = figure2
    areas = {(a.method, a.task): a for a in aggregate.curve_areas(group)}
    # Straight lines from the untrained return r to the final mean f at steps 0, 100, 200:
    # the mean of the three points is r + (f − r) / 2.
    prism_lbf = 0.1 + (1.6 / 3 - 0.1) / 2
    fups_lbf = 0.1 + (0.2 - 0.1) / 2
    assert areas[("prism", LBF_TASK)].area == pytest.approx(prism_lbf)
    assert areas[("fups", LBF_TASK)].area == pytest.approx(fups_lbf)
    assert areas[("prism", LBF_TASK)].relative == pytest.approx(prism_lbf / fups_lbf)
    assert areas[("fups", SMAX_TASK)].relative == pytest.approx(1.0)
    assert areas[("prism", SMAX_TASK)].relative == pytest.approx((1.9 / 3) / 0.5)
    assert aggregate.curve_areas(group, reference="absent")[0].relative is None


def test_curves_against_optimizer_steps(figure2):
    group, _ = figure2
    returns = aggregate.curves(group, "eval_return", FEW)
    moved = aggregate.against_optimizer_steps(returns, group)
    assert len(moved) == len(returns) > 0
    for before, after in zip(returns, moved, strict=True):
        assert list(after.steps) == [s // 10 for s in before.steps]  # the records' mapping
        assert list(after.iqm) == list(before.iqm)
    stripped = group._replace(runs=tuple(dataclasses.replace(r, records=()) for r in group.runs))
    assert aggregate.against_optimizer_steps(returns, stripped) == []


def test_optimizer_steps_come_from_the_config_for_runs_logged_before_the_metric(figure2):
    group, _ = figure2
    run = group.runs[0]
    old = dataclasses.replace(
        run,
        records=tuple(
            {k: v for k, v in r.items() if k != "train/optimizer_steps"} for r in run.records
        ),
    )
    config = from_dict(json.loads((run.path / "config.json").read_text()))
    expected = {s: config.algo_config.optimizer_steps(s) for s in (0, 100, 200)}
    assert old.optimizer_steps() == expected
    assert run.optimizer_steps() == {0: 0, 100: 10, 200: 20}  # the records win when present
