"""The built-in environment families, registered through the public registry.

Each factory imports its adapter when called, so registering them costs no import of jaxmarl,
jumanji, brax or MJX. ``jaxmarl:`` takes any environment jaxmarl registers by its own name
(``jaxmarl:MPE_simple_spread_v3``); ``mpe:`` is the MPE tasks under short names
(``mpe:simple_spread``), with MPE's own 25-step episodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prism_marl.envs.registry import register_env

if TYPE_CHECKING:
    from prism_marl.config import EnvConfig
    from prism_marl.envs.base import MultiAgentEnv


def task_of(config: EnvConfig) -> str:
    """The task part of ``config.id``: everything after the first colon."""
    return config.id.partition(":")[2]


def make_lbf(config: EnvConfig) -> MultiAgentEnv:
    """``lbf:<task>``: Level-Based Foraging (``envs/lbf.py``), 50-step episodes by default."""
    from prism_marl.envs.lbf import LBFEnv

    return LBFEnv(
        task_of(config),
        episode_limit=config.episode_limit or 50,
        rules=config.lbf_rules,
        generator=config.lbf_generator,
        penalty=config.lbf_penalty,
        fix_quirks=config.lbf_fix_quirks,
    )


def make_smax(config: EnvConfig) -> MultiAgentEnv:
    """``smax:<map>``: SMACv2-style battles (``envs/smax.py``)."""
    from prism_marl.envs.smax import SMAXEnv

    return SMAXEnv(task_of(config), episode_limit=config.episode_limit)


def make_mabrax(config: EnvConfig) -> MultiAgentEnv:
    """``mabrax:<robot>``: MaMuJoCo-style robots (``envs/mabrax.py``)."""
    from prism_marl.envs.mabrax import MABraxEnv

    return MABraxEnv(task_of(config), episode_limit=config.episode_limit)


def make_mamujoco(config: EnvConfig) -> MultiAgentEnv:
    """``mamujoco:<robot>_<conf>``: MaMuJoCo on MuJoCo's physics, MJX (``envs/mamujoco.py``)."""
    from prism_marl.envs.mamujoco import MaMuJoCoEnv

    return MaMuJoCoEnv(
        task_of(config), episode_limit=config.episode_limit, agent_obsk=config.agent_obsk
    )


def make_jaxmarl(config: EnvConfig) -> MultiAgentEnv:
    """``jaxmarl:<name>``: any jaxmarl environment through the generic adapter."""
    from prism_marl.envs.jaxmarl_adapter import make_jaxmarl_env

    return make_jaxmarl_env(task_of(config), episode_limit=config.episode_limit)


def make_mpe(config: EnvConfig) -> MultiAgentEnv:
    """``mpe:<task>``: jaxmarl's MPE under short names (``envs/mpe.py``)."""
    from prism_marl.envs.mpe import make_mpe_env

    return make_mpe_env(task_of(config), episode_limit=config.episode_limit)


BUILT_IN = {
    "lbf": make_lbf,
    "smax": make_smax,
    "mabrax": make_mabrax,
    "mamujoco": make_mamujoco,
    "jaxmarl": make_jaxmarl,
    "mpe": make_mpe,
}


def register_built_in() -> None:
    """Register the built-in families (again: a user's replacement of one is undone)."""
    for prefix, factory in BUILT_IN.items():
        register_env(prefix, factory, overwrite=True)
