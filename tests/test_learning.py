"""Learning evidence on one task of each benchmark family (medians over vmapped seeds).

Budgets are sized for CI on a 2-core CPU; they are checks that learning works, not benchmark
results. LBF is evaluated with sampled actions: under jumanji's movement rules a greedy policy
deadlocks in some start states (measured: greedy 0.79 vs sampled 0.99 for the same Prism
policies), see docs/decisions/0008-lbf-greedy-evaluation.md.
"""

import numpy as np
import pytest

from prism_marl.algos.ppo import PPOConfig
from prism_marl.config import EnvConfig, RunConfig
from prism_marl.run import Trainer
from prism_marl.sharing import FuPS, Prism

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("strategy", [FuPS(), Prism()], ids=["fups", "prism"])
def test_mappo_solves_lbf_8x8_2p_2f_coop(tmp_path, strategy):
    config = RunConfig(
        algo="mappo",
        sharing=strategy,
        env=EnvConfig(id="lbf:8x8-2p-2f-coop"),
        algo_config=PPOConfig(num_envs=32, rollout_length=64),
        num_seeds=3,
        total_steps=1_000_000,
        eval_interval=500_000,
        eval_episodes=32,
        final_eval_episodes=128,
        eval_greedy=False,
        run_dir=str(tmp_path / "lbf"),
    )
    summary = Trainer(config, progress=False).run()
    assert np.median(summary["final_returns"]) >= 0.9, summary["final_returns"]


def test_ippo_wins_smax_3m(tmp_path):
    config = RunConfig(
        algo="ippo",
        sharing=FuPS(),
        env=EnvConfig(id="smax:3m"),
        algo_config=PPOConfig(
            num_envs=64,
            rollout_length=64,
            lr=2e-3,
            num_minibatches=4,
            hidden_sizes=(128, 128),
            critic_hidden_sizes=(128, 128),
        ),
        num_seeds=3,
        total_steps=1_200_000,
        eval_interval=600_000,
        eval_episodes=32,
        final_eval_episodes=64,
        run_dir=str(tmp_path / "smax"),
    )
    summary = Trainer(config, progress=False).run()
    assert summary["final_win_rate_mean"] >= 0.8, summary


@pytest.mark.skip(
    reason="wedges XLA CPU in 2 of 3 pytest runs (brax init never returns, every thread parked; "
    "docs/decisions/0009-cpu-wedge.md); it passed in the runs that did not wedge"
)
def test_gaussian_policy_improves_on_mabrax_hopper(tmp_path):
    config = RunConfig(
        algo="mappo",
        sharing=Prism(),
        env=EnvConfig(id="mabrax:hopper_3x1", episode_limit=200),
        algo_config=PPOConfig(
            num_envs=32,
            rollout_length=64,
            lr=3e-4,
            activation="tanh",
            entropy_coef=0.0,
            num_minibatches=4,
        ),
        num_seeds=2,
        total_steps=300_000,
        eval_interval=100_000,
        eval_episodes=8,
        final_eval_episodes=16,
        run_dir=str(tmp_path / "hopper"),
    )
    trainer = Trainer(config, progress=False)
    import jax

    from prism_marl.run import seed_keys

    initial = jax.jit(jax.vmap(trainer.algo.init))(seed_keys(config))
    before, _ = trainer._evaluate(initial, 0, 16)
    summary = trainer.run()
    start = float(np.median(np.asarray(before).mean(axis=1)))
    end = float(np.median(summary["final_returns"]))
    assert end > 1.2 * start, (start, end)
