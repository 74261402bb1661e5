"""The run directory's formats: metrics records, marl-eval's table, what a resume reads back."""

import contextlib

import numpy as np
import pytest

from prism_marl.errors import ConfigError
from prism_marl.run import CONFIG_FILE, RunStore
from prism_marl.run.store import EvalPoint, marl_eval_table, metric_records
from tests.conftest import tiny_config

CONFIG = tiny_config("/unused")  # lbf: no winner; 2 seeds


def point(steps, returns, won=None):
    won = np.zeros_like(returns) if won is None else np.asarray(won)
    return EvalPoint(steps, 1.23456, 99.99, np.asarray(returns, np.float32), won)


def test_metric_records_one_per_seed_with_small_arrays_kept():
    metrics = {
        "loss/value": np.array([0.5, 0.25]),
        "prism/masks": np.zeros((2, 64)),  # 64 numbers per seed: kept
        "big": np.zeros((2, 65)),  # 65: dropped
    }
    records = metric_records(CONFIG, False, point(32, [[1.0, 2.0], [3.0, 5.0]]), metrics)
    assert [r["seed"] for r in records] == [0, 1]
    first, second = records
    assert first["eval_return"] == 1.5 and second["eval_return"] == 4.0
    assert second["eval_episode_returns"] == [3.0, 5.0]
    assert first["wall_time"] == 1.235 and first["steps_per_second"] == 100.0
    # 32 steps: one update (4 envs x 8 steps) of 2 epochs x 2 minibatches.
    assert first["train/optimizer_steps"] == 4
    assert second["loss/value"] == 0.25 and len(first["prism/masks"]) == 64
    assert "big" not in first and "eval_win_rate" not in first


def test_metric_records_of_games_with_a_winner_carry_win_rates():
    records = metric_records(CONFIG, True, point(0, [[1.0, 0.0]] * 2, [[1, 0], [1, 1]]), {})
    assert [r["eval_win_rate"] for r in records] == [0.5, 1.0]
    assert records[1]["eval_episode_wins"] == [1.0, 1.0]


def test_marl_eval_table_nests_env_task_algorithm_run_step():
    records = metric_records(CONFIG, False, point(0, [[1.0, 2.0], [3.0, 4.0]]), {})
    records += metric_records(CONFIG, False, point(64, [[5.0, 6.0], [7.0, 8.0]]), {})
    absolute = {"returns": np.array([[9.0, 9.5], [1.0, 0.5]])}
    table = marl_eval_table(CONFIG, records, absolute)
    runs = table["lbf"]["8x8-2p-2f-coop"]["mappo_prism"]
    assert sorted(runs) == ["run_0", "run_1"]
    assert runs["run_1"]["step_1"] == {"step_count": 64, "return": [7.0, 8.0]}
    assert runs["run_0"]["absolute_metrics"] == {"return": [9.0, 9.5]}


def test_read_metrics_drops_records_after_the_checkpoint(tmp_path):
    store = RunStore(tmp_path)
    records = metric_records(CONFIG, False, point(0, [[1.0], [1.0]]), {})
    records += metric_records(CONFIG, False, point(64, [[2.0], [2.0]]), {})
    store.write_metrics(records)
    assert [r["env_steps"] for r in store.read_metrics(0)] == [0, 0]
    assert len(store.read_metrics(64)) == 4


def test_config_round_trips_and_a_directory_without_one_is_a_config_error(tmp_path):
    store = RunStore(tmp_path / "run")
    with pytest.raises(ConfigError, match=r"^resume: .* holds no config.json"):
        store.read_config("resume")
    assert not store.holds_files()
    with contextlib.ExitStack() as closing:
        store.open(CONFIG, closing)
    assert (tmp_path / "run" / CONFIG_FILE).exists() and store.holds_files()
    # Read back pointed at the directory it was read from.
    assert store.read_config("resume") == CONFIG.__class__(
        **{**CONFIG.__dict__, "run_dir": str(tmp_path / "run")}
    )
