"""Named presets with paper-style settings per benchmark family (``--preset NAME``).

A preset fills run fields and algorithm hyper-parameters; flags given explicitly win. The
paper's exact hyper-parameters are not public; these follow the MAPPO/IPPO settings commonly
used on each benchmark family (EPyMARL for LBF, JaxMARL for SMAX and MaBrax).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "lbf": {
        "run": {"algo": "mappo", "total_steps": 2_000_000, "eval_interval": 100_000},
        "env": {"id": "lbf:8x8-2p-2f-coop"},
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
}
