"""The environment registry: an id's family (``family:task``) names the factory that builds it.

Built-in families register through ``register_env`` like a user's (``envs/families.py``), so
``make_env``, config validation and the command line accept a user's family wherever they accept
``lbf:``. A family that another installed package provides is found through its entry point in
the ``prism_marl.envs`` group (name = the family, value = its factory), loaded on first use, so
that a fresh ``prism-marl`` process (the CLI, a sweep's worker, ``--resume``) knows it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING

from prism_marl.errors import ConfigError

if TYPE_CHECKING:
    from prism_marl.config import EnvConfig
    from prism_marl.envs.base import MultiAgentEnv

EnvFactory = Callable[["EnvConfig"], "MultiAgentEnv"]
"""Builds the adapter for an ``EnvConfig`` whose id starts with the factory's family."""

ENTRY_POINT_GROUP = "prism_marl.envs"
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FACTORIES: dict[str, EnvFactory] = {}


def register_env(prefix: str, factory: EnvFactory, *, overwrite: bool = False) -> None:
    """Make ids ``prefix:<task>`` build through ``factory``.

    Args:
        prefix: The family, without the colon (letters, digits, ``_``, ``.``, ``-``).
        factory: Called with the run's ``EnvConfig`` (``config.id`` holds the whole id, the task
            after the first colon); returns a ``MultiAgentEnv``. It should raise ``ConfigError``
            ("env: ...") for a task it does not know.
        overwrite: Replace a family registered already with another factory (the built-in
            ones included); registering the same factory again is a no-op.

    Raises:
        ConfigError: The prefix is malformed, or registered already to another factory.
    """
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ConfigError(
            f"env: a family is letters, digits, '_', '.' or '-' without the colon; got {prefix!r}"
        )
    if not callable(factory):
        raise ConfigError(f"env: the factory of {prefix!r} is not callable")
    if prefix in _FACTORIES and _FACTORIES[prefix] is not factory and not overwrite:
        raise ConfigError(f"env: {prefix!r} is already registered (overwrite=True replaces)")
    _FACTORIES[prefix] = factory


def unregister_env(prefix: str) -> None:
    """Forget family ``prefix`` (no error when it is not registered)."""
    _FACTORIES.pop(prefix, None)


def registered_envs() -> tuple[str, ...]:
    """The registered families, in registration order (built-in ones first)."""
    return tuple(_FACTORIES)


def env_factory(prefix: str) -> EnvFactory | None:
    """The factory of family ``prefix``, from the registry or an installed entry point."""
    if prefix not in _FACTORIES:
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP, name=prefix):
            _FACTORIES[prefix] = entry.load()
            break
    return _FACTORIES.get(prefix)


def require_known_env(env_id: str) -> None:
    """Raise the one-line ``ConfigError`` for an id whose family is not registered.

    Raises:
        ConfigError: ``env: unknown environment ...; valid families: ...``.
    """
    family, colon, _ = env_id.partition(":")
    if not colon or env_factory(family) is None:
        valid = ", ".join(f"{name}:" for name in registered_envs())
        raise ConfigError(f"env: unknown environment {env_id!r}; valid families: {valid}")


def make_env(config: EnvConfig) -> MultiAgentEnv:
    """Build the adapter for ``config.id`` through its family's factory.

    Raises:
        ConfigError: The family is not registered, or its factory rejects the task.
    """
    require_known_env(config.id)
    factory = env_factory(config.id.partition(":")[0])
    assert factory is not None  # require_known_env found it
    return factory(config)


__all__ = [
    "ENTRY_POINT_GROUP",
    "EnvFactory",
    "env_factory",
    "make_env",
    "register_env",
    "registered_envs",
    "require_known_env",
    "unregister_env",
]
