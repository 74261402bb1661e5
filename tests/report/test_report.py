"""report.md end to end on small results directories: tables, missing runs, figures."""

import re

import pytest

from prism_marl.report import write_report
from tests.report.conftest import LBF, SMAX

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(results_dirs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    inputs = [str(results_dirs[k]) for k in ("figure2", "figure4", "ablations", "lone")]
    path = write_report(
        inputs, str(out), command="prism-marl report ...", resamples=200, agent_counts=(2, 4)
    )
    return path, path.read_text()


def section(text, title):
    """The text of the section whose heading is ``title`` up to the next heading of its level."""
    level = title.split(" ")[0]
    start = text.index(title + "\n")
    rest = text[start + len(title) + 1 :]
    end = re.search(rf"^{level} ", rest, re.MULTILINE)
    return rest if end is None else rest[: end.start()]


def test_header_names_the_command_and_inputs(report, results_dirs):
    _, text = report
    assert text.startswith("# prism-marl report")
    assert "prism-marl report ..." in text and " UTC" in text
    for path in results_dirs.values():
        assert f"`{path}`" in text


def test_final_return_table_has_hand_computed_numbers(report):
    _, text = report
    figure2 = section(text, "## figure2-quick")
    table = section(figure2, "### Final returns")
    iqm = 1.6 / 3  # three seeds: rliable's IQM cuts none
    assert f"| prism | {LBF} / mappo | {iqm:.4g} |" in table
    assert "| IQM | 95% CI (200 resamples) | mean | 95% CI (200 resamples) | seeds |" in table
    row = next(line for line in table.splitlines() if line.startswith(f"| prism | {LBF}"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == f"{1.6 / 3:.4g}" and cells[6] == "3"  # mean, seeds
    assert cells[-3:] == ["sampled", "0.2", f"{1.6 / 3:.4g}"]  # eval mode, greedy, sampled
    smax = next(line for line in table.splitlines() if line.startswith(f"| fups | {SMAX}"))
    assert "| 0.25 |" in smax  # win rate
    assert "nops" not in table  # unfinished: no final returns


def test_aggregate_and_probability_of_improvement(report):
    _, text = report
    aggregate = section(section(text, "## figure2-quick"), "### Aggregate over tasks")
    assert f"| {LBF} / mappo | 0.1 | prism | {1.6 / 3:.4g} | yes |" in aggregate
    assert "| method | tasks | runs | IQM | 95% CI | mean | 95% CI | median |" in aggregate
    assert "95% CI, 200 stratified-bootstrap resamples" in aggregate
    assert f"| fups | 2 | {(7.5 / 9 + 8 / 9) / 2:.4g} |" in aggregate
    assert "figure2-quick-aggregates.png" in aggregate
    assert "figure2-quick-profiles.png" in aggregate


def test_missing_runs_are_listed(report):
    _, text = report
    missing = section(text, "## Missing or unfinished runs")
    failed = next(line for line in missing.splitlines() if "nops__mappo__lbf__quick" in line)
    assert "| failed | 3 | 1 | RuntimeError: boom | 2 |" in failed
    assert "| pending |" in missing and "no run directory" in missing
    assert "finished without summary.json" in missing
    assert missing.count("`") == 2 * 3  # three runs, ids in backticks


def test_budget_ablation_diversity_and_resources(report):
    _, text = report
    budget = section(text, "## Figure 4: figure4-quick, Full vs Half parameter budget")
    assert f"| prism | {(0.5 - 0.1) / (0.8 - 0.1):.4g} |" in budget
    assert "| fups | 1 |" in budget
    assert f"| prism | {LBF} / mappo | half | 40 | 600 | 0.5 |" in budget
    ablations = section(section(text, "## ablations-quick"), "### Ablations")
    assert "| rank-1-2 | 0.4 [0.4, 0.4] |" in ablations
    diversity = section(section(text, "## figure2-quick"), "### Behavioural diversity")
    assert "prism-mask_distance.png" in diversity and "masks-prism__mappo__" in diversity
    resources = section(text, "## Figure 5: resources against the number of agents")
    assert "| strategy | N=2 | N=4 |" in resources and "| prism |" in resources
    assert "## runs" in text  # the prism-marl train run


def test_every_referenced_png_exists(report):
    path, text = report
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) >= 10
    for name in images:
        data = (path.parent / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, name
    assert {p.name for p in path.parent.glob("*.png")} == set(images)


def test_source_date_epoch_fixes_the_generated_time(monkeypatch):
    from prism_marl.report import generated_at

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796601600")
    assert generated_at() == "2026-12-07 00:00 UTC"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert generated_at().endswith(" UTC")
