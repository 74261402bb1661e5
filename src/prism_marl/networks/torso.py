"""Per-agent network bodies built only from strategy layers: an MLP and a GRU.

Every layer is ``strategy.dense(...)`` (or ``strategy.recurrent_dense`` for the GRU's recurrent
kernels), so a torso never branches on the strategy. The first layer receives the one-hot agent
id when the strategy asks for it. Axis glossary: T time, B batch (any leading axes), D features,
H hidden units.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.sharing.base import DEFAULT_KERNEL_INIT, AgentIds, Initializer, SharingStrategy

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "gelu": nn.gelu,
}


class MLPTorso(nn.Module):
    """x [..., D] -> [..., H_last]: (strategy layer, activation) per hidden size."""

    strategy: SharingStrategy
    num_agents: int
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    kernel_init: Initializer = DEFAULT_KERNEL_INIT

    @nn.compact
    def __call__(self, x: jax.Array, agent_ids: AgentIds) -> jax.Array:
        """Features for each agent's sample."""
        act = ACTIVATIONS[self.activation]
        for depth, width in enumerate(self.hidden_sizes):
            layer = self.strategy.dense(
                width,
                self.num_agents,
                depth=depth,
                agent_id_input=depth == 0 and self.strategy.agent_id_input,
                kernel_init=self.kernel_init,
                name=f"dense_{depth}",
            )
            x = act(layer(x, agent_ids))
        return x


class GRUCell(nn.Module):
    """GRU step built from strategy layers (Cho et al., 2014), input projections precomputed.

    The input kernels W_i x (a fused [·, 3H] ``strategy.dense`` layer) do not depend on the
    hidden state, so ``GRUTorso`` applies them to every time step at once; the cell adds the
    fused [H, 3H] ``strategy.recurrent_dense`` layer:

        r, z = σ(W_ir x + W_hr h + b_r), σ(W_iz x + W_hz h + b_z)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn));  h' = (1 − z) ⊙ n + z ⊙ h
    """

    strategy: SharingStrategy
    num_agents: int
    hidden_size: int

    @nn.compact
    def __call__(
        self, hidden: jax.Array, from_input: jax.Array, agent_ids: AgentIds
    ) -> tuple[jax.Array, jax.Array]:
        """Hidden [B, H], input projections W_i x + b_i [B, 3H] -> (h' [B, H], h' [B, H])."""
        size = self.hidden_size
        from_hidden = self.strategy.recurrent_dense(
            3 * size,
            self.num_agents,
            kernel_init=nn.initializers.orthogonal(),
            name="recurrent_kernels",
        )(hidden, agent_ids)
        # One split per fused product: its gradient is one concatenation, where three slices'
        # gradients are three zero-padded [·, 3H] arrays summed, at every step of the unroll.
        input_r, input_z, input_n = jnp.split(from_input, 3, axis=-1)
        hidden_r, hidden_z, hidden_n = jnp.split(from_hidden, 3, axis=-1)
        reset = jax.nn.sigmoid(input_r + hidden_r)
        update = jax.nn.sigmoid(input_z + hidden_z)
        candidate = jnp.tanh(input_n + reset * hidden_n)
        new_hidden = (1.0 - update) * candidate + update * hidden
        return new_hidden, new_hidden


class GRUTorso(nn.Module):
    """Recurrent body over time: dense -> activation -> GRU, with hidden-state resets.

    Parameters: ``dense_0``, the GRU's ``input_kernels`` (applied to all steps before the
    scan) and ``gru/cell/recurrent_kernels``.

    Called with x [T, B, D], agent_ids broadcastable to [T, B], resets [T, B] or a prefix of
    its axes (True where an episode starts, so the hidden state is zeroed before that step) and
    hidden [B, H]; B may be several axes.
    Returns (last hidden [B, H], features [T, B, H]).
    """

    strategy: SharingStrategy
    num_agents: int
    input_size: int = 64
    hidden_size: int = 64
    activation: str = "relu"
    kernel_init: Initializer = DEFAULT_KERNEL_INIT

    @nn.compact
    def __call__(
        self, hidden: jax.Array, x: jax.Array, agent_ids: AgentIds, resets: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Run the GRU over the time axis."""
        # Resets may omit trailing axes (e.g. [T, E] for [T, E, N] samples): one flag per env.
        resets = resets.reshape(resets.shape + (1,) * (x.ndim - 1 - resets.ndim))
        resets = jnp.broadcast_to(resets, x.shape[:-1])
        embedded = ACTIVATIONS[self.activation](
            self.strategy.dense(
                self.input_size,
                self.num_agents,
                depth=0,
                agent_id_input=self.strategy.agent_id_input,
                kernel_init=self.kernel_init,
                name="dense_0",
            )(x, agent_ids)
        )
        # One product over all T steps: per-agent kernels (Prism's W_i = U diag(s ⊙ m_i) Vᵀ,
        # NoPS's stacks) are then built once per unroll instead of once per step.
        from_input = self.strategy.dense(
            3 * self.hidden_size, self.num_agents, depth=1, name="input_kernels"
        )(embedded, agent_ids)
        scan = nn.scan(
            _ResettingGRU,
            variable_broadcast=["params", "buffers"],
            split_rngs={"params": False},
            in_axes=0,
            out_axes=0,
        )
        # Static ids (np.arange(N) along the agent axis) stay static inside the scan so that
        # the cell's layers keep their agent-major products; traced ids are scanned over time.
        static = isinstance(agent_ids, np.ndarray)
        static_ids = tuple(int(i) for i in agent_ids.ravel()) if static else None
        ids = jnp.zeros_like(resets) if static else jnp.broadcast_to(agent_ids, x.shape[:-1])
        return scan(self.strategy, self.num_agents, self.hidden_size, static_ids, name="gru")(
            hidden, (from_input, ids, resets)
        )

    def initial_hidden(self, batch_shape: tuple[int, ...]) -> jax.Array:
        """Zeros [*batch_shape, H]."""
        return jnp.zeros((*batch_shape, self.hidden_size))


class _ResettingGRU(nn.Module):
    """One scan step: zero the hidden state where an episode starts, then step the GRU."""

    strategy: SharingStrategy
    num_agents: int
    hidden_size: int
    static_ids: tuple[int, ...] | None = None

    @nn.compact
    def __call__(
        self, hidden: jax.Array, inputs: tuple[jax.Array, jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        x, scanned_ids, resets = inputs
        ids = scanned_ids if self.static_ids is None else np.asarray(self.static_ids)
        hidden = jnp.where(resets[..., None], jnp.zeros_like(hidden), hidden)
        return GRUCell(self.strategy, self.num_agents, self.hidden_size, name="cell")(
            hidden, x, ids
        )
