"""``prism-marl bench scale``: the task per N, the state's parts against hand-derived sizes, and
a strategy too large for memory reported before anything is allocated."""

import json

import jax
import pytest

from prism_marl.bench import scale
from prism_marl.cli import main
from prism_marl.config import EnvConfig, RunConfig
from prism_marl.envs.lbf import LBFTask
from prism_marl.envs.lbf_rules import guaranteed_food_capacity
from prism_marl.programs import init_seeds
from prism_marl.run import build_algorithm, seed_keys
from prism_marl.sharing import Prism


@pytest.mark.parametrize("num_agents", [2, 8, 128, 512])
def test_scale_task_is_the_smallest_grid_that_always_places_the_food(num_agents):
    task = LBFTask.parse(scale.scale_task(num_agents).removeprefix("lbf:"))
    assert task.num_agents == task.num_food == num_agents
    assert guaranteed_food_capacity(task.grid_size, num_agents) >= num_agents
    assert guaranteed_food_capacity(task.grid_size - 1, num_agents) < num_agents


def test_prisms_per_agent_state_is_its_mask_logits_and_their_adam_moments():
    # lbf:6x6-2p-2f observations have 3 (2 + 2) = 12 features; MAPPO's actor is
    # 12 -> 64 -> 64 -> 6, so Prism's full ranks are 12 + 64 + 6 = 82 singular values per agent.
    for num_agents in (2, 5):
        config = RunConfig(
            sharing=Prism(),
            env=EnvConfig(id=f"lbf:8x8-{num_agents}p-2f"),
            num_seeds=1,
            total_steps=10**6,
        )
        algo = build_algorithm(config)
        obs = 3 * (num_agents + 2)
        shapes = jax.eval_shape(init_seeds(algo), seed_keys(config))
        parts = scale.state_breakdown(shapes, algo.strategy.per_agent_leaves())
        ranks = min(obs, 64) + 64 + 6
        assert parts["per_agent"] == num_agents * ranks * 4 * 3  # float32: value, mu, nu
        assert parts["optimizer"] >= 2 * parts["parameters"]  # Adam's two moments
        assert parts["total"] == scale.tree_bytes(shapes)


def test_a_strategy_that_cannot_fit_gets_a_row_and_no_state(monkeypatch, capsys):
    monkeypatch.setattr(scale, "available_bytes", lambda: 1)
    allocated = []
    monkeypatch.setattr(scale, "checkpoint_bytes", lambda state: allocated.append(state))
    code = main(["bench", "scale", "--agents", "2", "--strategies", "prism", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and allocated == []
    assert [row["strategy"] for row in rows] == ["fups", "prism"]
    for row in rows:
        assert row["fits"] is False and "GiB available" in row["note"]
        assert "steps_per_second" not in row and row["peak_bytes"] > row["state_bytes"]


def test_bench_scale_measures_every_column_and_draws_the_plot(tmp_path, capsys):
    plot = tmp_path / "scale.png"
    argv = ["bench", "scale", "--agents", "2", "--strategies", "prism", "--repeats", "1"]
    assert main([*argv, "--plot", str(plot), "--json"]) == 0
    fups, prism = json.loads(capsys.readouterr().out)
    assert fups["ratio_to_fups"] == 1.0 and prism["ratio_to_fups"] > 0
    assert prism["per_agent_numbers"] == 2 * (12 + 64 + 6)
    assert prism["over_fups_bytes"] == prism["state_bytes"] - fups["state_bytes"] > 0
    for row in (fups, prism):
        assert row["fits"] is True and row["checkpoint_bytes"] > 0
        assert row["forward_seconds"] > 0 and row["steps_per_second"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
