"""A strategy written only in the reference form, as docs/guides/adding-a-strategy.md shows:
no ``project``, no fast path. W_i = W ⊙ g_i: a shared kernel with per-agent output gains."""

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from prism_marl.sharing.base import AgentLayer, SharingStrategy


class GainLayer(AgentLayer):
    """W_i = W ⊙ g_i (g_i [O] per agent, broadcast over inputs), b_i = b."""

    def declare(self, in_features):
        self.param("kernel", self.kernel_init, (in_features, self.features))
        self.param("bias", self.bias_init, (self.features,))
        self.param("gains", nn.initializers.normal(1.0), (self.num_agents, self.features))

    def agent_kernels(self, variables):
        p = variables["params"]
        kernels = p["kernel"][None] * p["gains"][:, None, :]
        return kernels, jnp.broadcast_to(p["bias"], (self.num_agents, self.features))


@dataclasses.dataclass(frozen=True)
class Gains(SharingStrategy):
    """Per-agent output gains on every shared layer."""

    name = "gains"
    layer_class = GainLayer
