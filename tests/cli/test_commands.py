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
