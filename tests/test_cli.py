"""The command line: JSON contract, plot, budget and one-line errors."""

import json
import subprocess
import sys

import pytest

from prism_marl.cli import main

KEYS = {
    "strategy",
    "num_agents",
    "parameters",
    "additional",
    "normalized_overhead",
    "optimizer_bytes",
    "flops",
}


def test_resources_json_rows(capsys):
    assert main(["resources", "--json", "--agents", "2", "4", "--strategies", "fups", "prism"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["strategy"], r["num_agents"]) for r in rows] == [
        ("fups", 2),
        ("fups", 4),
        ("prism", 2),
        ("prism", 4),
    ]
    assert all(set(r) == KEYS for r in rows)
    prism2, prism4 = rows[2], rows[3]
    # 2×64 actor on 12 inputs, 6 actions: ranks 12, 64, 6 -> 82 mask numbers per agent.
    assert prism4["additional"] - prism2["additional"] == 2 * 82


def test_resources_plot_writes_png(tmp_path, capsys):
    path = tmp_path / "fig" / "five.png"
    assert main(["resources", "--agents", "2", "8", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "prism" in capsys.readouterr().out


def test_budget_table(capsys):
    assert (
        main(["resources", "--budget", "full", "--agents", "4", "--strategies", "fups", "--json"])
        == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["width"], row["parameters"], row["target"]) == (137, 21515, 21528)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["resources", "--strategies", "magic"], "--strategies"),
        (["resources", "--agents", "0"], "--agents"),
        (["resources", "--plot", "fig.pdf"], "--plot"),
        (["resources", "--budget", "most"], "budget"),
        (["resources", "--gru", "--hidden-sizes", "64"], "hidden-sizes"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, needle, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "prism_marl.cli", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow(minutes=1.4)
def test_bench_train_json_rows_have_the_documented_keys(capsys):
    """One tiny bench: every row carries the keys analysis reads, FuPS is the reference;
    --prism-ranks adds a Prism row per rank."""
    code = main(
        [
            "bench", "train", "--envs", "lbf:8x8-2p-2f-coop", "--strategies", "prism",
            "--prism-ranks", "16", "--num-seeds", "1", "--updates", "1", "--repeats", "1",
            "--json",
        ]
    )  # fmt: skip
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["strategy"], row["rank"]) for row in rows] == [
        ("fups", None),
        ("prism", None),
        ("prism", 16),
    ]
    # Rank 16 of 64-wide layers: the factored path's fewer FLOPs than full rank's.
    assert rows[2]["gflop_per_update"] < rows[1]["gflop_per_update"]
    keys = {"algo", "env", "strategy", "num_seeds", "steps_per_second", "ratio_to_fups"}
    for row in rows:
        assert keys | {"ratio_to_env_only"} <= set(row)
        assert row["steps_per_second"] > 0 and row["ratio_to_env_only"] > 0
    assert rows[0]["ratio_to_fups"] == 1.0


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
