"""Environments behind one multi-agent API (see ``envs/base.py``), built by family.

``make_env`` looks the id's family up in the registry (``envs/registry.py``); the built-in
families (``lbf:``, ``smax:``, ``mabrax:``, ``jaxmarl:``, ``mpe:``) register on import, and a
user's register through ``register_env``.
"""

from __future__ import annotations

from prism_marl.envs.base import EnvSpec, EnvStep, MultiAgentEnv
from prism_marl.envs.families import register_built_in
from prism_marl.envs.registry import (
    EnvFactory,
    make_env,
    register_env,
    registered_envs,
    unregister_env,
)

register_built_in()

__all__ = [
    "EnvFactory",
    "EnvSpec",
    "EnvStep",
    "MultiAgentEnv",
    "make_env",
    "register_env",
    "registered_envs",
    "unregister_env",
]
