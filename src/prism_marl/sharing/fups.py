"""FuPS (full parameter sharing) and FuPS+ID (with the one-hot agent id on the input).

Reference: Christianos et al., "Scaling Multi-Agent RL with Selective Parameter Sharing",
ICML 2021 (where both baselines are named); Gupta et al., AAMAS 2017 (shared policies).
"""

from __future__ import annotations

import dataclasses

from prism_marl.sharing.base import SharedDense, SharingStrategy


@dataclasses.dataclass(frozen=True)
class FuPS(SharingStrategy):
    """Full parameter sharing: all agents use one network (no agent id unless switched on)."""

    name = "fups"
    per_agent_kernels = False
    layer_class = SharedDense


@dataclasses.dataclass(frozen=True)
class FuPSID(FuPS):
    """FuPS with the one-hot agent id appended to the network input (its definition)."""

    name = "fups-id"

    agent_id_input: bool = True
    """Add the one-hot agent id to the network's input (on by definition of FuPS+ID)."""
