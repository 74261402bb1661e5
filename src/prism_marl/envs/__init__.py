"""Environments behind one multi-agent API (see ``envs/base.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prism_marl.envs.base import EnvSpec, EnvStep, MultiAgentEnv
from prism_marl.errors import ConfigError

if TYPE_CHECKING:
    from prism_marl.config import EnvConfig


def make_env(config: EnvConfig) -> MultiAgentEnv:
    """Build the adapter for ``config.id`` (``lbf:…``, ``smax:…``, ``mabrax:…``)."""
    family, _, task = config.id.partition(":")
    if family == "lbf":
        from prism_marl.envs.lbf import LBFEnv

        return LBFEnv(
            task,
            episode_limit=config.episode_limit or 50,
            rules=config.lbf_rules,
            generator=config.lbf_generator,
            penalty=config.lbf_penalty,
            fix_quirks=config.lbf_fix_quirks,
        )
    if family == "smax":
        from prism_marl.envs.smax import SMAXEnv

        return SMAXEnv(task, episode_limit=config.episode_limit)
    if family == "mabrax":
        from prism_marl.envs.mabrax import MABraxEnv

        return MABraxEnv(task, episode_limit=config.episode_limit)
    raise ConfigError(f"env: unknown environment {config.id!r}; valid families: lbf, smax, mabrax")


__all__ = ["EnvSpec", "EnvStep", "MultiAgentEnv", "make_env"]
