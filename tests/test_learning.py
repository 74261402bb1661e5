"""Learning evidence on one task of each benchmark family (medians over vmapped seeds).

Budgets are sized for CI on a 2-core CPU; they are checks that learning works, not benchmark
results. Each threshold was set from runs of the same settings, recorded with their dates and
numbers in docs/learning-checks.md. PPO policies are evaluated as they are trained, sampled
(decision 0021).
"""

import numpy as np
import pytest

from prism_marl.algos.matd3 import MATD3Config
from prism_marl.algos.ppo import PPOConfig
from prism_marl.algos.qmix import QMIXConfig
from prism_marl.config import EnvConfig, RunConfig
from prism_marl.run import Trainer
from prism_marl.sharing import FuPS, Prism
from tests.conftest import read_metrics

# The learning checks of `make test-all` carry ``slow(minutes=...)``: roughly their time in
# `make test-all` on 2 cores beside the other worker, which tests/conftest.py uses to spread
# them over the two test workers. The fast tier keeps one: MAPPO + Prism on LBF.
FAST_MAPPO_UPDATES = 80
"""MAPPO on lbf:8x8-2p-2f-coop: two evaluation chunks of this many updates of 2048 steps
(327,680 steps, about a minute and a half on 2 cores)."""


def train_lbf_coop(run_dir, algo, strategy, algo_config, chunks, chunk_steps) -> list[float]:
    """Per-seed final returns on lbf:8x8-2p-2f-coop: 3 vmapped seeds, ``chunks`` evaluation
    chunks of ``chunk_steps``, sampled (ε-greedy for QMIX) evaluation over 128 final episodes."""
    config = RunConfig(
        algo=algo,
        sharing=strategy,
        env=EnvConfig(id="lbf:8x8-2p-2f-coop"),
        algo_config=algo_config,
        num_seeds=3,
        total_steps=chunks * chunk_steps,
        eval_interval=chunk_steps,
        eval_episodes=32,
        final_eval_episodes=128,
        diversity_episodes=0,  # learning is what these check; SND costs CI minutes
        eval_greedy=False,
        run_dir=str(run_dir),
    )
    return Trainer(config, progress=False).run()["final_returns"]


def test_mappo_with_prism_solves_lbf_8x8_2p_2f_coop(tmp_path):
    """The fast tier's learning check: MAPPO + Prism solves the cooperative 8x8 task (median
    sampled return at least 0.8 of the maximum 1) from a policy that scores under 0.1."""
    algo_config = PPOConfig(num_envs=32, rollout_length=64)
    chunk = FAST_MAPPO_UPDATES * 2048
    returns = train_lbf_coop(tmp_path / "lbf", "mappo", Prism(), algo_config, 2, chunk)
    start = [r["eval_return"] for r in read_metrics(tmp_path / "lbf") if r["env_steps"] == 0]
    assert np.median(start) < 0.1, start  # the untrained policy, sampled
    assert np.median(returns) >= 0.8, returns


@pytest.mark.slow(minutes=4.5)
def test_qmix_with_prism_wins_smax_3m(tmp_path):
    """QMIX + Prism (recurrent agents with spectral layers, sequence replay, hypernetwork mixer
    on the normalised world state) wins 3m more often than not after 150k steps, mean over 2
    vmapped seeds, where the untrained policy (the step-0 evaluation) wins at most one battle
    in five. The suite's off-policy Prism check and its SMAX check.
    """
    config = RunConfig(
        algo="qmix",
        sharing=Prism(),
        env=EnvConfig(id="smax:3m"),
        algo_config=QMIXConfig(lr=1e-3),
        num_seeds=2,
        total_steps=150_000,
        eval_interval=75_000,
        eval_episodes=32,
        final_eval_episodes=64,
        diversity_episodes=0,  # learning is what these check; SND costs CI minutes
        run_dir=str(tmp_path / "qmix"),
    )
    summary = Trainer(config, progress=False).run()
    start = [r["eval_win_rate"] for r in read_metrics(config.run_dir) if r["env_steps"] == 0]
    assert np.mean(start) <= 0.2, start
    assert summary["final_win_rate_mean"] >= 0.5, summary


def untrained_and_final(config) -> tuple[float, float]:
    """Train ``config``; the median over seeds of the step-0 (untrained) evaluation return and
    of the final evaluation return."""
    summary = Trainer(config, progress=False).run()
    start = [r["eval_return"] for r in read_metrics(config.run_dir) if r["env_steps"] == 0]
    return float(np.median(start)), float(np.median(summary["final_returns"]))


@pytest.mark.slow(minutes=3)
def test_gaussian_policy_improves_on_mabrax_hopper(tmp_path):
    """MAPPO + Prism with a Gaussian policy raises hopper's greedy return well above the
    untrained policy's (step-0 evaluation in metrics.jsonl), median over 3 seeds: one seed's
    evaluation can drop for a while, so no single seed decides.
    """
    config = RunConfig(
        algo="mappo",
        sharing=Prism(),
        env=EnvConfig(id="mabrax:hopper_3x1", episode_limit=200),
        algo_config=PPOConfig(lr=3e-4, activation="tanh", entropy_coef=0.0, num_minibatches=4),
        num_seeds=3,
        # Two evaluation chunks of 48 updates of 2048 steps (196,608 steps).
        total_steps=196_608,
        eval_interval=98_304,
        eval_episodes=16,
        final_eval_episodes=16,
        diversity_episodes=0,  # learning is what these check; SND costs CI minutes
        eval_greedy=True,  # the Gaussian's mean, as measured
        run_dir=str(tmp_path / "hopper"),
    )
    start, end = untrained_and_final(config)
    assert end > 1.2 * start, (start, end)


@pytest.mark.slow(minutes=3.5)
def test_matd3_improves_on_mabrax_hopper(tmp_path):
    """MATD3 + FuPS raises hopper's greedy return well above the untrained actors' (step-0
    evaluation in metrics.jsonl), median over 3 seeds, in about 2 minutes on 2 cores. Above
    250 over a 200-step episode the hopper stays up for the whole episode and moves forward,
    which untrained deterministic actors rarely do.
    """
    config = RunConfig(
        algo="matd3",
        sharing=FuPS(),
        env=EnvConfig(id="mabrax:hopper_3x1", episode_limit=200),
        algo_config=MATD3Config(
            gradient_steps=64,
            hidden_sizes=(64, 64),
            critic_hidden_sizes=(64, 64),
            learning_starts=5000,
        ),
        num_seeds=3,
        total_steps=48_000,
        eval_interval=24_000,
        eval_episodes=16,
        final_eval_episodes=16,
        diversity_episodes=0,  # learning is what these check; SND costs CI minutes
        run_dir=str(tmp_path / "matd3_hopper"),
    )
    start, end = untrained_and_final(config)
    assert end > max(1.5 * start, 250.0), (start, end)


@pytest.mark.slow(minutes=1.5)
@pytest.mark.parametrize("strategy", [FuPS(), Prism()], ids=["fups", "prism"])
def test_mappo_improves_on_mpe_simple_spread(tmp_path, strategy):
    """MAPPO lowers simple_spread's cost (team return, 25-step episodes) well below the
    untrained policy's (the step-0 evaluation, near uniform) within 131k steps, median over 3
    vmapped seeds, sampled evaluation.
    """
    config = RunConfig(
        algo="mappo",
        sharing=strategy,
        env=EnvConfig(id="mpe:simple_spread"),
        algo_config=PPOConfig(num_envs=32, rollout_length=64),
        num_seeds=3,
        # Two evaluation chunks of 32 updates of 2048 steps (131,072 steps).
        total_steps=131_072,
        eval_interval=65_536,
        eval_episodes=32,
        final_eval_episodes=64,
        diversity_episodes=0,  # learning is what these check; SND costs CI minutes
        run_dir=str(tmp_path / "spread"),
    )
    start, end = untrained_and_final(config)
    assert end - start >= 5.0 and end > -70.0, (start, end)
