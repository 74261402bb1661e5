"""The report of a real (tiny) ``prism-marl train`` run: the formats the trainer writes today."""

import re

import pytest

from prism_marl.report import write_report
from prism_marl.run import Trainer
from tests.conftest import tiny_config


@pytest.mark.slow(minutes=1)
def test_report_of_a_real_run(tmp_path):
    run_dir = tmp_path / "run"
    config = tiny_config(run_dir, diversity_episodes=2)
    summary = Trainer(config, progress=False).run()
    path = write_report([str(run_dir)], str(tmp_path / "out"), command="test", agent_counts=(2,))
    text = path.read_text()
    finals = summary["final_returns"]
    assert f"| {summary['final_return_iqm']:.4g} |" in text
    low, high = summary["final_return_mean_ci95"]  # the report and summary.json agree
    mean = f"| {summary['final_return_mean']:.4g} | [{low:.4g}, {high:.4g}] | {len(finals)} |"
    assert mean in text
    assert "None: every run read is finished" in text
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (path.parent / name).stat().st_size > 0
    for figure in ("runs-curves.png", "runs-snd.png", "runs-prism-effective_rank.png"):
        assert figure in text
    assert "masks-run.png" in text
