"""``prism-marl train``: one-line errors, Ctrl-C, --help, --print-config and the summary."""

import signal
import subprocess
import sys
import time

import pytest

from prism_marl import cli
from prism_marl.cli import main
from prism_marl.run import SUMMARY_FILE
from tests.conftest import read_metrics


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--sharing", "magic"], "--sharing"),
        (["--algo.num-minibatches", "3"], "algo.num-minibatches"),
        (["--env", "lbf:9x9-2p"], "env"),
        (["--env", "smax:nowhere"], "env"),
        (["--sharing.mask", "soft"], "--sharing.mask"),
        (["--num-seeds", "0"], "--num-seeds"),
        (["--sharing", "kaleidoscope", "--sharing.reset-ratio", "2"], "sharing.reset-ratio"),
    ],
)
def test_train_bad_input_is_one_line_exit_2(tmp_path, capfd, argv, needle):
    run_dir = tmp_path / "never"
    try:
        code = cli.main(["train", "--run-dir", str(run_dir), *argv])
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    assert code == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert not run_dir.exists()


@pytest.mark.slow(minutes=0.6)
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--run-dir", "{run_dir}", "--sharing.mask", "soft"], "--sharing.mask"),
        # Refused after the environment is built: no library warning may precede the line.
        (["train", "--run-dir", "{run_dir}", "--algo", "qmix", "--env", "mabrax:hopper_3x1"],
         "algo: qmix needs discrete actions"),
        (["eval", "{run_dir}"], "RUN_DIR: "),
        (["train", "--resume", "{run_dir}"], "resume: "),
    ],
)  # fmt: skip
def test_bad_input_in_a_real_process_is_one_line_without_traceback(tmp_path, argv, needle):
    run_dir = tmp_path / "never"
    result = subprocess.run(
        [sys.executable, "-m", "prism_marl.cli",
         *(a.format(run_dir=run_dir) for a in argv)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert not run_dir.exists()


@pytest.mark.slow(minutes=0.5)
def test_ctrl_c_ends_a_run_on_one_line_with_its_checkpoints_kept(tmp_path):
    """Ctrl-C mid-run stops after the chunk's checkpoint: exit 130, no traceback, the resume
    command; every save finished."""
    run_dir = tmp_path / "interrupted"
    args = [
        "train", "--sharing", "prism", "--sharing.rank", "4", "--env", "lbf:8x8-2p-2f-coop",
        "--env.episode-limit", "10", "--num-seeds", "1", "--total-steps", "10000000",
        "--eval-interval", "64", "--eval-episodes", "2", "--algo.num-envs", "4",
        "--algo.rollout-length", "8", "--algo.hidden-sizes", "16", "16",
        "--algo.critic-hidden-sizes", "16", "--diversity-episodes", "0", "--no-progress",
        "--run-dir", str(run_dir),
    ]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "prism_marl.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background jobs start with SIGINT ignored; a terminal's Ctrl-C is not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    checkpoints = run_dir / "checkpoints"

    def saved():
        return sorted(int(p.name) for p in checkpoints.glob("*") if p.name.isdigit())

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if len(saved()) >= 2:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == cli.EXIT_INTERRUPTED, err[-2000:]
    assert "Traceback" not in err and "ERROR" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Ctrl-C again" in lines[0], err
    assert lines[1].endswith(f"prism-marl train --resume {run_dir}"), err
    # Every save finished, and the metrics end where the last checkpoint does (chunk c ends
    # at env step 64·(c + 1)): a resume continues as if the run had never stopped.
    steps = saved()
    assert len(steps) >= 2 and all(p.name.isdigit() for p in checkpoints.iterdir())
    assert read_metrics(run_dir)[-1]["env_steps"] == 64 * (steps[-1] + 1)
    assert not (run_dir / SUMMARY_FILE).exists()


def test_train_help_documents_strategy_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--sharing", "prism", "--help"])
    assert exit_.value.code == 0
    stdout = capsys.readouterr().out
    for flag in (
        "--sharing.rank",
        "--sharing.lambda-div",
        "--algo.lr",
        "--env.episode-limit",
        "--num-seeds",
        "--resume",
        "--preset",
        "--stall-timeout",
    ):
        assert flag in stdout
    assert "Weight of the diversity regulariser" in stdout


def test_unwritable_run_dir_fails_before_training(tmp_path, capfd):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = cli.main(["train", "--run-dir", str(blocker / "run"), "--no-progress"])
    assert code == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "run-dir" in lines[0], lines


def test_print_config_round_trips_through_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--sharing", "snp", "--preset", "smax", "--algo.lr", "0.001"]
    assert main([*argv, "--print-config"]) == 0
    text = capsys.readouterr().out
    assert "run_dir" not in text  # generated per run, so each run from the file gets its own
    (tmp_path / "run.toml").write_text(text)
    assert main(["train", "--config", "run.toml", "--total-steps", "777", "--print-config"]) == 0
    again = capsys.readouterr().out
    assert again == text.replace("total_steps = 10000000", "total_steps = 777")
    assert "lr = 0.001" in again and 'type = "snp"' in again
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("text", "argv", "needle"),
    [
        ('[sharing]\ntype = "prism"\nrank = 4\n', ["--sharing", "fups"], "--sharing fups"),
        ('algo = "mappo"\n[algo_config]\nclip = 0.1\n', ["--algo", "qmix"], "--algo qmix"),
        ("[sharing]\ntype = 'magic'\n", [], "sharing: unknown strategy 'magic'"),
        ("[env]\ncolour = 1\n", [], "unknown field(s) ['colour'] for EnvConfig; valid:"),
        ("num_seeds = 0\n", [], "num-seeds"),
    ],
)
def test_config_file_errors_are_one_line(tmp_path, capsys, monkeypatch, text, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(text)
    assert main(["train", "--config", "bad.toml", *argv, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [tmp_path / "bad.toml"]


@pytest.mark.parametrize("algo", ["mappo", "ippo", "qmix", "vdn", "matd3"])
@pytest.mark.parametrize(
    "sharing", ["nops", "fups", "fups-id", "seps", "snp", "kaleidoscope", "prism"]
)
def test_train_help_lists_every_field_of_each_strategy_and_algorithm(sharing, algo, capsys):
    """`train --sharing S --algo A --help` prints (a "%" in a field's docstring broke it)."""
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--sharing", sharing, "--algo", algo, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--algo.gamma" in out and "--env.agent-obsk" in out
    if sharing == "kaleidoscope":
        assert "--sharing.relative-thresholds" in out and "1–2%)" in out


def test_summary_table_names_both_intervals_and_the_best_policy(finished_run, capsys):
    from prism_marl.cli.train import print_summary

    _, run_dir, summary = finished_run
    print_summary(summary, run_dir)
    out = capsys.readouterr().out
    assert "final return (mean)" in out and "final return (IQM)" in out
    assert out.count("95% CI") == 2
    assert f"best policy, {summary['absolute_episodes']} episodes" in out
