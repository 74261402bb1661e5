"""Agent networks, torsos and heads built only from strategy layers."""

from prism_marl.networks.agents import AgentQNetwork, DeterministicActor, Policy
from prism_marl.networks.heads import CategoricalHead, DeterministicHead, GaussianHead
from prism_marl.networks.torso import GRUTorso, MLPTorso

__all__ = [
    "AgentQNetwork",
    "CategoricalHead",
    "DeterministicActor",
    "DeterministicHead",
    "GRUTorso",
    "GaussianHead",
    "MLPTorso",
    "Policy",
]
