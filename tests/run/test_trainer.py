"""The Trainer: chunk plan, results files, exact resume, smoke runs, divergence."""

import dataclasses
import json

import numpy as np
import pytest

from prism_marl.config import from_dict
from prism_marl.run import SUMMARY_FILE, Plan, RunStore, Trainer, resume
from prism_marl.sharing import SNP, FuPS, FuPSID, Kaleidoscope, NoPS, Prism, SePS
from tests.conftest import TINY_PPO, read_metrics, stable, tiny_config

TINY = TINY_PPO


@pytest.mark.parametrize(
    ("total", "interval", "expected"),
    [
        # 1000 steps of 16-step updates, evaluations <= 496 apart: 63 updates in 3 chunks of 21
        # (1008 steps), not 3 chunks of 31 (1488 steps).
        (1000, 500, (21, 3)),
        # Whole intervals keep their chunks: 62 updates, 2 chunks of 31.
        (992, 496, (31, 2)),
        (16, 500, (1, 1)),
        # An interval shorter than one update still evaluates after every update.
        (64, 5, (1, 4)),
    ],
)
def test_plan_covers_total_steps_with_equal_chunks(tmp_path, total, interval, expected):
    config = tiny_config(tmp_path, algo_config=dataclasses.replace(TINY, num_envs=2))
    plan = Plan.of(dataclasses.replace(config, total_steps=total, eval_interval=interval))
    assert plan.steps_per_update == 16
    assert (plan.updates_per_chunk, plan.num_chunks) == expected


read = read_metrics


def test_results_files(finished_run):
    config, run_dir, summary = finished_run
    assert from_dict(json.loads((run_dir / "config.json").read_text())) == config
    records = read(run_dir)
    assert len(records) == 4 * config.num_seeds  # the untrained policy and three chunks
    assert {r["seed"] for r in records} == {0, 1}
    assert [r["env_steps"] for r in records if r["seed"] == 0] == [0, 64, 128, 192]
    assert "loss/policy" not in records[0] and "eval_return" in records[0]
    # Behavioural diversity at every evaluation, step 0 included: a total variation in [0, 1],
    # above 0 where Prism's masks start apart (noisy initial logits).
    assert all(0.0 < r["eval/snd"] <= 1.0 for r in records), [r["eval/snd"] for r in records]
    for key in (
        "eval_return",
        "loss/policy",
        "loss/value",
        "prism/orth",
        "prism/mask_distance",
        "steps_per_second",
        "wall_time",
    ):
        assert key in records[-1]
    for key in (
        "final_return_mean",
        "final_return_iqm",
        "final_return_iqm_ci95",
        "final_return_mean_ci95",
        "final_returns",
        "statistics",
        "absolute_returns",
        "best_env_steps",
        "wall_seconds",
        "steps_per_second",
        "parameters",
        "additional",
    ):
        assert key in summary
    assert len(summary["final_returns"]) == 2
    # A stochastic policy is evaluated as trained (sampled), with its greedy returns beside.
    assert summary["eval_mode"] == "sampled"
    assert summary["final_returns_sampled"] == summary["final_returns"]
    assert summary["final_return_sampled_mean"] == summary["final_return_mean"]
    greedy = summary["final_returns_greedy"]
    assert len(greedy) == 2 and all(0.0 <= v <= 1.0 for v in greedy)
    assert summary["final_return_greedy_mean"] == pytest.approx(np.mean(greedy))
    for statistic in ("mean", "iqm"):
        low, high = summary[f"final_return_{statistic}_ci95"]
        assert low <= summary[f"final_return_{statistic}"] <= high
    assert "2,000 stratified-bootstrap resamples" in summary["statistics"]["ci95"]
    assert json.loads((run_dir / SUMMARY_FILE).read_text()) == summary
    # The absolute metric: each seed's best evaluation point, its policy on 10x the episodes.
    for seed, step in enumerate(summary["best_env_steps"]):
        mine = [r for r in records if r["seed"] == seed]
        best = max(mine, key=lambda r: r["eval_return"])  # the first of equal maxima
        assert step == best["env_steps"]
    assert summary["absolute_episodes"] == 10 * config.eval_episodes
    assert len(summary["absolute_returns"]) == 2
    assert (run_dir / "best_checkpoint").is_dir()
    marl = json.loads((run_dir / "marl_eval.json").read_text())
    run0 = marl["lbf"]["8x8-2p-2f-coop"]["mappo_prism"]["run_0"]
    assert run0["step_0"]["step_count"] == 0 and run0["step_3"]["step_count"] == 192
    seed0 = [r for r in records if r["seed"] == 0]
    assert run0["step_3"]["return"] == seed0[3]["eval_episode_returns"]
    assert len(run0["step_3"]["return"]) == config.eval_episodes
    assert np.mean(run0["step_3"]["return"]) == pytest.approx(seed0[3]["eval_return"])
    absolute = run0["absolute_metrics"]["return"]
    assert len(absolute) == 10 * config.eval_episodes
    assert np.mean(absolute) == pytest.approx(summary["absolute_returns"][0])
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    # Prism's final masks, every spectral layer (rank 4 here): [seed][agent][value] in [0, 1].
    masks = json.loads((run_dir / "agent_masks.json").read_text())
    assert len(masks) >= 3 and all(np.shape(m) == (2, 2, 4) for m in masks.values()), masks
    assert all(0.0 <= v <= 1.0 for m in masks.values() for v in np.ravel(m))
    assert (run_dir / "agent_masks.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(run_dir.glob(".*.tmp"))


def test_resume_continues_exactly(finished_run, tmp_path):
    config, full_dir, summary = finished_run
    run_dir = tmp_path / "killed"
    killed = dataclasses.replace(config, run_dir=str(run_dir))
    assert Trainer(killed, progress=False).run(max_chunks=2) is None
    # Step 0 and two chunks, two seeds each: deterministic so far.
    assert stable(read(run_dir)) == stable(read(full_dir))[:6]
    resumed = resume(run_dir, progress=False)
    assert stable(read(run_dir)) == stable(read(full_dir))
    assert resumed["final_returns"] == summary["final_returns"]
    # The best policies came back with the checkpoint: the same absolute metric.
    assert resumed["best_env_steps"] == summary["best_env_steps"]
    assert resumed["absolute_returns"] == summary["absolute_returns"]


def test_refuses_to_overwrite_a_run(finished_run):
    config, _, _ = finished_run
    with pytest.raises(Exception, match="run-dir"):
        Trainer(config, progress=False).run()


SMOKE = [
    pytest.param("mappo", NoPS(), False, marks=pytest.mark.slow(minutes=0.8)),
    pytest.param("mappo", FuPS(), False, marks=pytest.mark.slow(minutes=0.8)),
    pytest.param("mappo", FuPSID(), True, marks=pytest.mark.slow(minutes=0.8)),
    pytest.param("ippo", SNP(), False, marks=pytest.mark.slow(minutes=0.8)),
    pytest.param("ippo", Kaleidoscope(reset_interval=64), True, marks=pytest.mark.slow(minutes=1)),
    # The fast tier's PPO smoke run: IPPO, recurrent, Prism with its spectral GRU.
    pytest.param("ippo", Prism(spectral_gru=True), True),
]


@pytest.mark.parametrize(
    ("algo", "strategy", "recurrent"),
    SMOKE,
    ids=[f"{p.values[0]}-{p.values[1].name}-{'gru' if p.values[2] else 'mlp'}" for p in SMOKE],
)
def test_smoke_every_strategy(tmp_path, algo, strategy, recurrent):
    config = tiny_config(
        tmp_path / "r",
        algo=algo,
        sharing=strategy,
        num_seeds=1,
        algo_config=dataclasses.replace(TINY, recurrent=recurrent),
    )
    summary = Trainer(config, progress=False).run()
    assert 0.0 <= summary["final_return_mean"] <= 1.0
    records = read(tmp_path / "r")
    assert [r["env_steps"] for r in records] == [0, 64, 128]  # two chunks of 64 steps
    for key in ("loss/value", "loss/policy", "loss/entropy", "train/return"):
        assert np.isfinite(records[-1][key]), key
    assert records[-1]["loss/value"] > 0 and records[-1]["loss/entropy"] > 0


@pytest.mark.slow(minutes=2)
def test_seps_prepares_after_pretraining(tmp_path):
    config = tiny_config(
        tmp_path / "s",
        sharing=SePS(pretrain_steps=64, num_clusters=2, vae_epochs=1),
        total_steps=128,
    )
    trainer = Trainer(config, progress=False)
    first = trainer.phase
    trainer.run()
    # The change built a new phase and left the first one as it was.
    assert first.config == config and first.algo.strategy == config.sharing
    assert trainer.phase is not first and trainer.algo.strategy.prepared_clusters == 2
    saved = from_dict(json.loads((tmp_path / "s" / "config.json").read_text()))
    assert saved.sharing.prepared_clusters == 2 and saved.sharing.preparation_steps == 0
    tables = json.loads((tmp_path / "s" / "preparation.json").read_text())["cluster_of_agent"]
    assert len(tables) == config.num_seeds  # one table per seed, each from its own data
    assert all(sorted(table) == [0, 1] for table in tables), tables  # two agents, K = 2


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from prism_marl.errors import TrainingDivergedError

    trainer = Trainer(tiny_config(tmp_path / "nan", total_steps=192), progress=False)
    real_chunk = trainer._chunk
    calls = []

    def chunk_going_bad(state):
        state, metrics = real_chunk(state)
        calls.append(1)
        if len(calls) == 2:  # the second chunk's loss is NaN for one seed
            metrics = {**metrics, "loss/value": np.array([0.1, np.nan])}
        return state, metrics

    monkeypatch.setattr(trainer, "_chunk", chunk_going_bad)
    with pytest.raises(TrainingDivergedError, match="loss/value.*step 128.*step 64"):
        trainer.run()
    checkpoints = RunStore(tmp_path / "nan").checkpoints()
    assert checkpoints.latest_chunk() == 0  # only the first, good chunk was saved
    checkpoints.close()
    assert [r["env_steps"] for r in read(tmp_path / "nan") if r["seed"] == 0] == [0, 64]
