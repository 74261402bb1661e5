"""Parameter-sharing strategies behind one agent-indexed layer interface.

Command-line names: nops, fups, fups-id, seps, snp, kaleidoscope, prism.
"""

from __future__ import annotations

from prism_marl.errors import ConfigError
from prism_marl.sharing.base import (
    AgentLayer,
    AuxOutput,
    Preparation,
    SharingStrategy,
    count_leaves,
)
from prism_marl.sharing.fups import FuPS, FuPSID
from prism_marl.sharing.kaleidoscope import Kaleidoscope
from prism_marl.sharing.nops import NoPS
from prism_marl.sharing.prism import Prism
from prism_marl.sharing.seps import SePS
from prism_marl.sharing.snp import SNP

STRATEGIES: dict[str, type[SharingStrategy]] = {
    cls.name: cls for cls in (NoPS, FuPS, FuPSID, SePS, SNP, Kaleidoscope, Prism)
}


def register_strategy(cls: type[SharingStrategy], *, overwrite: bool = False) -> None:
    """Make a strategy class of your own available by its ``name`` everywhere a built-in is.

    ``--sharing NAME``, experiment files, ``config.json`` and the reports find it once it is
    registered in the process (import your module before training). ``cls`` must be a frozen
    dataclass subclass of ``SharingStrategy`` with a ``name`` and a ``layer_class``.
    """
    if not (isinstance(cls, type) and issubclass(cls, SharingStrategy)) or not cls.name:
        raise ConfigError(f"sharing: {cls!r} is not a named SharingStrategy subclass")
    if cls.name in STRATEGIES and STRATEGIES[cls.name] is not cls and not overwrite:
        raise ConfigError(f"sharing: {cls.name!r} is already registered (overwrite=True replaces)")
    STRATEGIES[cls.name] = cls


def make_strategy(name: str, **fields: object) -> SharingStrategy:
    """Build a strategy by its command-line name, e.g. ``make_strategy("prism", rank=16)``."""
    if name not in STRATEGIES:
        raise ConfigError(f"sharing: unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](**fields)  # type: ignore[arg-type]


__all__ = [
    "STRATEGIES",
    "AgentLayer",
    "AuxOutput",
    "FuPS",
    "FuPSID",
    "Kaleidoscope",
    "NoPS",
    "Preparation",
    "Prism",
    "SNP",
    "SePS",
    "SharingStrategy",
    "count_leaves",
    "make_strategy",
    "register_strategy",
]
