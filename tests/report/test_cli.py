"""``prism-marl report`` on the command line: the report, and bad input as one line, exit 2."""

import pytest

from prism_marl import cli


def test_report_command_writes_the_report(results_dirs, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["report", str(results_dirs["lone"]), "--out", str(out), "--agents", "2", "4"]
    assert cli.main([*argv, "--resamples", "50"]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'report.md'}"
    text = (out / "report.md").read_text()
    command = f"prism-marl report {results_dirs['lone']} --out {out} --resamples 50 --agents 2 4"
    assert f"```sh\n{command}\n```" in text


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing", "RESULTS_DIR"),
        ("empty", "RESULTS_DIR"),
        ("out-under-a-file", "--out"),
        ("out-is-a-file", "--out"),
        ("no-out", "--out"),
        ("bad-resamples", "--resamples"),
    ],
)
def test_bad_input_is_one_line_exit_2(results_dirs, tmp_path, capfd, case, needle):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("")
    out = tmp_path / "out"
    results = tmp_path / "empty" if case == "empty" else results_dirs["lone"]
    if case == "missing":
        results = tmp_path / "nowhere"
    argv = ["report", str(results), "--out", str(out)]
    if case == "out-under-a-file":
        argv[-1] = str(tmp_path / "file" / "out")
    if case == "out-is-a-file":
        argv[-1] = str(tmp_path / "file")
    if case == "no-out":
        argv = argv[:2]
    if case == "bad-resamples":
        argv += ["--resamples", "0"]
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    assert code == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert "Traceback" not in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert not (results_dirs["lone"] / "report.md").exists()
