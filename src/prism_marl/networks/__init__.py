"""Torsos and heads built only from strategy layers."""

from prism_marl.networks.actor import MLPActor, RecurrentActor
from prism_marl.networks.heads import CategoricalHead, DeterministicHead, GaussianHead
from prism_marl.networks.torso import GRUTorso, MLPTorso

__all__ = [
    "CategoricalHead",
    "DeterministicHead",
    "GRUTorso",
    "GaussianHead",
    "MLPActor",
    "MLPTorso",
    "RecurrentActor",
]
