"""Runner: results files, determinism, checkpoint round trip, smoke runs, CLI errors."""

import dataclasses
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from prism_marl import cli
from prism_marl.algos.ppo import PPOConfig
from prism_marl.config import RunConfig, from_dict, to_dict
from prism_marl.run import SUMMARY_FILE, Plan, Trainer, resume
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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    config = tiny_config(run_dir, total_steps=192, diversity_episodes=2)
    summary = Trainer(config, progress=False).run()
    return config, run_dir, summary


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


def test_eval_command_uses_the_runs_evaluation_mode(finished_run, capsys):
    _, run_dir, _ = finished_run
    outputs = {}
    for flags in ([], ["--sampled"], ["--greedy"]):
        assert cli.main(["eval", str(run_dir), "--episodes", "4", *flags]) == 0
        outputs[" ".join(flags)] = json.loads(capsys.readouterr().out)
    assert outputs[""] == outputs["--sampled"] and outputs[""]["greedy"] is False
    assert outputs["--greedy"]["greedy"] is True
    assert all(0.0 <= v <= 1.0 for v in outputs["--greedy"]["return_per_seed"])


def test_eval_renders_one_greedy_episode_as_a_gif(finished_run, tmp_path, capsys):
    from PIL import Image

    _, run_dir, _ = finished_run
    gif = tmp_path / "episode" / "lbf.gif"
    assert cli.main(["eval", str(run_dir), "--episodes", "2", "--render", str(gif)]) == 0
    assert json.loads(capsys.readouterr().out)["render"] == str(gif)
    image = Image.open(gif)
    assert image.format == "GIF" and image.n_frames > 1


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
    Trainer(config, progress=False).run()
    saved = from_dict(json.loads((tmp_path / "s" / "config.json").read_text()))
    assert saved.sharing.prepared_clusters == 2 and saved.sharing.preparation_steps == 0
    tables = json.loads((tmp_path / "s" / "preparation.json").read_text())["cluster_of_agent"]
    assert len(tables) == config.num_seeds  # one table per seed, each from its own data
    assert all(sorted(table) == [0, 1] for table in tables), tables  # two agents, K = 2


def test_config_round_trip_for_every_strategy():
    for strategy in (
        NoPS(),
        FuPS(),
        FuPSID(),
        SePS(cluster_of_agent=(0, 1)),
        SePS(prepared_clusters=2),
        SNP(),
        Kaleidoscope(mask_of_agent=(0, 0)),
        Prism(rank=3, mask="hard"),
    ):
        config = RunConfig(sharing=strategy, algo_config=PPOConfig(hidden_sizes=(8, 8)))
        assert from_dict(json.loads(json.dumps(to_dict(config)))) == config


def test_config_json_from_before_a_changed_default_rebuilds_what_it_ran():
    """A config.json written before a field existed ran the old behaviour, not the new default."""
    for strategy, field, before in (
        (Prism(), "scaled_spectrum", False),
        (Kaleidoscope(), "relative_thresholds", False),
        (Kaleidoscope(), "reset_first_layer", True),
    ):
        data = to_dict(RunConfig(sharing=strategy))
        del data["sharing"][field]
        assert getattr(from_dict(data).sharing, field) is before
        assert getattr(from_dict(to_dict(RunConfig(sharing=strategy))).sharing, field) is (
            getattr(strategy, field)
        )


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


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from prism_marl.errors import TrainingDivergedError

    trainer = Trainer(tiny_config(tmp_path / "nan", total_steps=192), progress=False)
    real_chunk = trainer._chunk_fn
    calls = []

    def chunk_going_bad(state):
        state, metrics = real_chunk(state)
        calls.append(1)
        if len(calls) == 2:  # the second chunk's loss is NaN for one seed
            metrics = {**metrics, "loss/value": np.array([0.1, np.nan])}
        return state, metrics

    monkeypatch.setattr(trainer, "_chunk_fn", chunk_going_bad)
    with pytest.raises(TrainingDivergedError, match="loss/value.*step 128.*step 64"):
        trainer.run()
    manager = trainer._checkpointer()
    assert manager.latest_step() == 0  # only the first, good chunk was saved
    manager.close()
    assert [r["env_steps"] for r in read(tmp_path / "nan") if r["seed"] == 0] == [0, 64]


def test_summary_table_names_both_intervals_and_the_best_policy(finished_run, capsys):
    from prism_marl.cli.train import print_summary

    _, run_dir, summary = finished_run
    print_summary(summary, run_dir)
    out = capsys.readouterr().out
    assert "final return (mean)" in out and "final return (IQM)" in out
    assert out.count("95% CI") == 2
    assert f"best policy, {summary['absolute_episodes']} episodes" in out
