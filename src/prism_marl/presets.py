"""Named presets with paper-style settings per benchmark family (``--preset NAME``).

A preset fills run fields, algorithm hyper-parameters and, per strategy, the strategy fields
its original used on that family (``"sharing": {name: fields}``); flags given explicitly win. The
paper's exact hyper-parameters are not public; these follow the MAPPO/IPPO settings commonly
used on each benchmark family (EPyMARL for LBF, JaxMARL for SMAX and MaBrax), and the QMIX and
MATD3 settings of the lineage Prism is compared with (Kaleidoscope's QMIX on SMACv2, MATD3 on
MaMuJoCo; EPyMARL's QMIX on LBF).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from prism_marl.algos import ALGORITHMS
from prism_marl.config import EnvConfig, RunConfig, algo_config_type, build_dataclass
from prism_marl.errors import ConfigError, require
from prism_marl.sharing import STRATEGIES

# Kaleidoscope as LXXXXR/Kaleidoscope ran it per benchmark (docs/method.md §2, decision 0035).
# Every original feeds the one-hot agent id (SMACv2 and MPE: ``obs_agent_id: True`` in
# config/default.yaml; MaMuJoCo: mujoco_multi.py:204-209 appends it to each observation).
KALEIDOSCOPE_SMACV2: dict[str, Any] = {
    # Kalei_SMACv2/src/src/config/algs/Kalei_qmix_rnn_1R3.yaml:36-43
    "alpha": 5.0,
    "reset_interval": 1_000_000,
    "reset_ratio": 0.2,
    "reset_first_layer": False,  # n_rnn_agent.py:207, reset_layers = [fc2, fc3, fc4]
    "agent_id_input": True,
}
KALEIDOSCOPE_MAMUJOCO: dict[str, Any] = {
    # Kalei_MaMuJoCo/src/tuned_configs/*-Kalei_matd3_s0.json, "Kalei": {...}
    "alpha": 0.1,
    "reset_interval": 1_000_000,
    "reset_ratio": 0.5,
    "reset_first_layer": True,  # plain_mlp.py:178, reset_layers = [fc1, fc2, fc3]
    "agent_id_input": True,
}
KALEIDOSCOPE_MPE: dict[str, Any] = {
    # LBF has no Kaleidoscope original; its nearest is MPE (small grid-like tasks, QMIX,
    # short budgets): Kalei_MPE/src/config/algs/Kalei_qmix_rnn_1R3.yaml:40-48.
    "alpha": 0.5,
    "reset_interval": 200_000,
    "reset_ratio": 0.1,
    "reset_first_layer": False,
    "agent_id_input": True,
}

PRESETS: dict[str, dict[str, Any]] = {
    "lbf": {
        "run": {"algo": "mappo", "total_steps": 2_000_000, "eval_interval": 100_000},
        "env": {"id": "lbf:8x8-2p-2f-coop"},
        "sharing": {"kaleidoscope": KALEIDOSCOPE_MPE},
        "algo": {
            "lr": 5e-4,
            "num_envs": 32,
            "rollout_length": 64,
            "num_epochs": 4,
            "num_minibatches": 2,
            "entropy_coef": 0.01,
            "gamma": 0.99,
        },
    },
    "smax": {
        "run": {"algo": "mappo", "total_steps": 10_000_000, "eval_interval": 250_000},
        "env": {"id": "smax:smacv2_5_units"},
        "sharing": {"kaleidoscope": KALEIDOSCOPE_SMACV2},
        "algo": {
            "lr": 5e-4,
            "num_envs": 64,
            "rollout_length": 128,
            "num_epochs": 4,
            "num_minibatches": 2,
            "entropy_coef": 0.01,
            "recurrent": True,
            "hidden_sizes": (64, 64),
            "gamma": 0.99,
        },
    },
    "mabrax": {
        "run": {"algo": "mappo", "total_steps": 10_000_000, "eval_interval": 250_000},
        "env": {"id": "mabrax:hopper_3x1"},
        "sharing": {"kaleidoscope": KALEIDOSCOPE_MAMUJOCO},
        "algo": {
            "lr": 3e-4,
            "num_envs": 64,
            "rollout_length": 128,
            "num_epochs": 5,
            "num_minibatches": 4,
            "entropy_coef": 0.0,
            "activation": "tanh",
            "hidden_sizes": (128, 128),
            "critic_hidden_sizes": (128, 128),
            "gamma": 0.99,
        },
    },
    "matd3-mabrax": {
        "run": {"algo": "matd3", "total_steps": 10_000_000, "eval_interval": 250_000},
        "env": {"id": "mabrax:hopper_3x1"},
        "sharing": {"kaleidoscope": KALEIDOSCOPE_MAMUJOCO},
        "algo": {
            "actor_lr": 5e-4,
            "critic_lr": 1e-3,
            "batch_size": 1000,
            "buffer_size": 1_000_000,
            "tau": 0.005,
            "exploration_noise": 0.1,
            "policy_noise": 0.2,
            "noise_clip": 0.5,
            "gamma": 0.99,
        },
    },
    "qmix-smacv2": {
        "run": {"algo": "qmix", "total_steps": 10_000_000, "eval_interval": 250_000},
        "env": {"id": "smax:smacv2_5_units"},
        "sharing": {"kaleidoscope": KALEIDOSCOPE_SMACV2},
        "algo": {
            "lr": 1e-3,
            "batch_size": 128,
            "buffer_size": 5000,
            "learning_starts": 128,
            "epsilon_start": 1.0,
            "epsilon_end": 0.05,
            "epsilon_steps": 100_000,
            "td_lambda": 0.6,
            # "every 200 episodes": one gradient step per two sequences (decision 0012)
            "target_update_interval": 100,
            "mixer_embed": 32,
            "hypernet_hidden": 64,
            "segment_length": 100,
        },
    },
    "qmix-lbf": {
        "run": {"algo": "qmix", "total_steps": 2_000_000, "eval_interval": 100_000},
        "env": {"id": "lbf:8x8-2p-2f-coop"},
        "sharing": {"kaleidoscope": KALEIDOSCOPE_MPE},
        "algo": {
            "lr": 5e-4,
            "batch_size": 32,
            "buffer_size": 5000,
            # EPyMARL's replay ratio: one gradient step on 32 episodes per episode collected
            # (8 envs x 50 steps per update, LBF's 50-step episodes; decision 0022)
            "num_envs": 8,
            "segment_length": 50,
            "gradient_steps": 8,
            "epsilon_steps": 50_000,
            "target_update_interval": 200,
            "standardise_rewards": True,
        },
    },
}

# MaMuJoCo on MuJoCo's physics (envs/mamujoco.py): the MaBrax presets' settings (JaxMARL's MAPPO,
# Kaleidoscope's MATD3 on MaMuJoCo) on the environment the paper ran.
for _name, _base in (("mamujoco", "mabrax"), ("matd3-mamujoco", "matd3-mabrax")):
    PRESETS[_name] = {**PRESETS[_base], "env": {"id": "mamujoco:hopper_3x1"}}


def build_run_config(
    *,
    sharing: str = "prism",
    sharing_fields: dict[str, Any] | None = None,
    algo: str | None = None,
    preset: str | None = None,
    run_fields: dict[str, Any] | None = None,
    env_fields: dict[str, Any] | None = None,
    algo_fields: dict[str, Any] | None = None,
) -> RunConfig:
    """A RunConfig from a preset and explicit values; explicit values win over the preset's.

    The one place where ``prism-marl train``'s flags and an experiment file's entries become a
    run: unknown names (strategy, algorithm, preset, field) raise ``ConfigError`` naming the
    valid ones.
    """
    require(
        sharing in STRATEGIES,
        "sharing",
        f"unknown strategy {sharing!r}; valid: {', '.join(STRATEGIES)}",
    )
    require(
        preset is None or preset in PRESETS,
        "preset",
        f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}",
    )
    chosen: dict[str, Any] = PRESETS.get(preset or "", {})
    algo = algo or chosen.get("run", {}).get("algo", "mappo")
    require(
        algo in ALGORITHMS, "algo", f"unknown algorithm {algo!r}; valid: {', '.join(ALGORITHMS)}"
    )
    run = {**chosen.get("run", {}), **(run_fields or {}), "algo": algo}
    unknown = sorted(set(run) - {f.name for f in dataclasses.fields(RunConfig)})
    if unknown:
        valid = ", ".join(f.name for f in dataclasses.fields(RunConfig) if f.init)
        raise ConfigError(f"run: unknown field(s) {unknown}; valid: {valid}")
    algo_values = {**chosen.get("algo", {}), **(algo_fields or {})}
    sharing_values = {**chosen.get("sharing", {}).get(sharing, {}), **(sharing_fields or {})}
    return RunConfig(
        sharing=build_dataclass(STRATEGIES[sharing], sharing_values),
        env=build_dataclass(EnvConfig, {**chosen.get("env", {}), **(env_fields or {})}),
        algo_config=build_dataclass(algo_config_type(algo), algo_values),
        **run,
    )
