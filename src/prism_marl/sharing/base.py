"""The sharing-strategy interface: a frozen config that builds agent-indexed dense layers.

Every strategy layer is called as ``layer(x, agent_ids)`` with x [..., D] and agent_ids an
integer array broadcastable to x.shape[:-1]; it returns [..., O]. Networks and algorithms never
branch on the strategy. Variables live in two flax collections: ``params`` (trained) and
``buffers`` (fixed per-run state such as SNP's neuron masks, never differentiated).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.fast.grouped import (
    agent_axis,
    apply_group_kernels,
    flat_matmul,
    flatten_leading,
    per_agent,
)
from prism_marl.rl.transitions import AgentTransitions

Initializer = Callable[..., jax.Array]
AgentIds = jax.Array | np.ndarray
"""Agent ids broadcastable to an input's leading axes; a static ``np.arange(N)`` along the agent
axis selects the agent-major products."""
Variables = Mapping[str, Any]

DEFAULT_KERNEL_INIT: Initializer = nn.initializers.lecun_normal()
DEFAULT_BIAS_INIT: Initializer = nn.initializers.zeros_init()


class AuxOutput(NamedTuple):
    """A strategy's auxiliary loss term (already weighted) and its metrics."""

    loss: jax.Array
    metrics: dict[str, jax.Array]


class Preparation(NamedTuple):
    """The result of ``SharingStrategy.prepare``: the prepared strategy and how to carry over.

    Attributes:
        strategy: the frozen strategy training continues with; its layers may have other
            shapes than the unprepared strategy's.
        adopt: ``adopt(pretrained, fresh, per_seed) -> variables`` for ONE seed (``jax.vmap``
            it over seeds): ``pretrained`` are the variables trained under the unprepared
            strategy, ``fresh`` freshly initialised variables of ``strategy``, ``per_seed``
            this seed's slice of ``per_seed`` below; the result has ``fresh``'s tree and
            shapes, and training continues from it. Pure and jit-safe.
        per_seed: arrays with a leading seed axis that ``adopt`` receives one seed at a time
            (SePS: each seed's agent -> cluster table, [S, N]); None when there are none.
        record: JSON-serialisable facts of the preparation for the run's files (SePS: each
            seed's clusters); empty when there are none.
    """

    strategy: SharingStrategy
    adopt: Callable[..., Variables]
    per_seed: Any = None
    record: Mapping[str, Any] = {}


def keep_pretrained(pretrained: Variables, fresh: Variables, per_seed: Any = None) -> Variables:
    """The default ``Preparation.adopt``: continue from the trained variables unchanged."""
    del fresh, per_seed
    return pretrained


class AgentLayer(nn.Module):
    """Base of every agent-indexed dense layer.

    A subclass writes its math once, in the reference form: ``declare`` its variables and give
    every agent's kernel and bias from them (``agent_kernels``, plain math as in
    docs/method.md). That trains correctly on every layout through the default ``project``.
    A subclass may instead override ``project`` with a fast path (Prism's factored products,
    NoPS's grouped products) and ``kernel_and_bias`` with its reference, which the contract
    tests hold every path to. This class handles leading axes, the optional agent-id input and
    the optional output mask. Layouts: per-sample ids (x [B, D], ids [B]) for any id pattern, or
    agent-major (x [P, N, Q, D], ids None) when the caller passes static numpy ids that
    enumerate the agents along one axis (``grouped.agent_axis``), which lets per-agent kernels
    run as one batched product.
    The agent-id input is the one-hot id concatenated to the layer's input,
    written as the equivalent lookup ``E[id]`` of an [N, O] kernel, added before any mask.
    """

    features: int
    num_agents: int
    hidden: bool = True
    depth: int = 0
    agent_id_input: bool = False
    kernel_init: Initializer = DEFAULT_KERNEL_INIT
    bias_init: Initializer = DEFAULT_BIAS_INIT

    def declare(self, in_features: int) -> None:
        """Declare the layer's variables (``self.param``, ``self.variable``) for D inputs.

        The reference form's first half; only layers that keep the default ``project`` write it.
        """
        raise NotImplementedError(f"{type(self).__name__} declares no variables")

    def agent_kernels(self, variables: Variables) -> tuple[jax.Array, jax.Array]:
        """The reference form: every agent's kernel [N, D, O] and bias [N, O].

        ``variables`` holds this layer's own collections, ``{"params": ..., "buffers": ...}``;
        pure, so that it serves both training (``project``) and ``kernel_and_bias``.
        """
        raise NotImplementedError(f"{type(self).__name__} has no reference form")

    def project(self, x: jax.Array, ids: jax.Array | None) -> jax.Array:
        """Strategy-specific x @ W_agent + b.

        Per-sample layout x [B, D], ids [B] -> [B, O]; agent-major x [P, N, Q, D], ids None ->
        [P, N, Q, O]. By default the reference form: ``declare``, then each sample times its
        agent's kernel from ``agent_kernels`` (``grouped.apply_group_kernels``, either layout).
        """
        self.declare(x.shape[-1])
        kernels, biases = self.agent_kernels(self.variables)
        agents = tuple(range(self.num_agents))
        return apply_group_kernels(x, kernels, ids, agents) + per_agent(biases, ids)

    def output_mask(self, ids: jax.Array | None) -> jax.Array | None:
        """Optional multiplicative mask on the pre-activation; None for no mask.

        [B, O] per sample, or [N, 1, O] (broadcast over [P, N, Q, O]) when ids is None
        (``grouped.per_agent``).
        """
        del ids
        return None

    @nn.compact
    def __call__(self, x: jax.Array, agent_ids: AgentIds) -> jax.Array:
        """Apply agent ``agent_ids[...]``'s layer to ``x[..., :]``: [..., D] -> [..., O]."""
        ids: jax.Array | None
        axis = agent_axis(x, agent_ids, self.num_agents)
        if axis is not None:
            before = int(np.prod(x.shape[:axis]))
            flat_x, ids = x.reshape(before, self.num_agents, -1, x.shape[-1]), None
        else:
            flat_x, ids = flatten_leading(x, agent_ids)
        y = self.project(flat_x, ids)
        if self.agent_id_input:
            in_features = x.shape[-1]

            def id_init(key: jax.Array, shape: tuple[int, int]) -> jax.Array:
                # Rows of a kernel drawn for the concatenated input [x, one_hot(id)].
                full = self.kernel_init(key, (in_features + shape[0], shape[1]))
                return full[in_features:]

            id_kernel = self.param("agent_id_kernel", id_init, (self.num_agents, self.features))
            y = y + per_agent(id_kernel, ids)
        mask = self.output_mask(ids)
        if mask is not None:
            y = y * mask
        return y.reshape(*x.shape[:-1], self.features)

    def kernel_and_bias(self, variables: Variables, agent: int) -> tuple[jax.Array, jax.Array]:
        """Agent ``agent``'s kernel [D, O] and bias [O] before the agent id and the mask.

        By default read from the reference form (``agent_kernels``).
        """
        kernels, biases = self.agent_kernels(variables)
        return kernels[agent], biases[agent]

    def effective_weight(self, variables: Variables, agent: int) -> tuple[jax.Array, jax.Array]:
        """Slow reference: (W [D, O], b [O]) with ``layer(x, agent) == x @ W + b``.

        ``variables`` holds this layer's own collections, ``{"params": ..., "buffers": ...}``.
        """
        kernel, bias = self.kernel_and_bias(variables, agent)
        params = variables["params"]
        if self.agent_id_input:
            bias = bias + params["agent_id_kernel"][agent]
        mask = self.output_mask_for(variables, agent)
        if mask is not None:
            kernel, bias = kernel * mask, bias * mask
        return kernel, bias

    def output_mask_for(self, variables: Variables, agent: int) -> jax.Array | None:
        """Agent ``agent``'s output mask [O] from explicit variables; None for no mask."""
        del variables, agent
        return None


class SharedDense(AgentLayer):
    """One dense layer for every agent: y = x @ W + b, W [D, O], b [O]; ids are ignored.

    FuPS's layer and the default of every strategy's GRU recurrent kernels; it lives here so
    that the base, which builds that default, imports no strategy module.
    """

    def project(self, x: jax.Array, ids: jax.Array | None) -> jax.Array:
        """X [B, D] -> [B, O] (or [P, N, Q, D] -> [P, N, Q, O]): one kernel for all samples."""
        del ids
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        return flat_matmul(x, kernel) + bias

    def kernel_and_bias(self, variables: Variables, agent: int) -> tuple[jax.Array, jax.Array]:
        """The shared kernel [D, O] and bias [O], whatever the agent."""
        del agent
        return variables["params"]["kernel"], variables["params"]["bias"]


@dataclasses.dataclass(frozen=True)
class SharingStrategy:
    """A parameter-sharing strategy: a frozen, hashable factory of agent-indexed layers.

    A concrete strategy declares its layer (``layer_class``) and the fields it passes to it
    (``layer_fields``); ``dense`` and ``recurrent_dense`` build every layer from those. Beyond
    layers, every strategy has an auxiliary loss (``aux_loss``, zero by default) and a pure
    maintenance step inside jit (``maintain``, identity by default). What only some strategies
    do is an optional capability, a protocol below that the code asks for by name:
    ``Prepares`` (SePS), ``TracksLosses`` (Kaleidoscope), ``HasAgentMasks`` (Prism).
    """

    name: ClassVar[str] = ""
    per_agent_kernels: ClassVar[bool] = True
    """Whether agents' kernels differ (networks then lay agents out first, ``AgentsFirst``)."""
    layer_class: ClassVar[type[AgentLayer]]
    shared_recurrent_input: ClassVar[bool] = False
    """Whether a GRU's fused input projection is one plain ``SharedDense`` for all agents
    (Kaleidoscope and SNP, whose originals never mask the GRU's kernels)."""
    """The ``AgentLayer`` subclass that ``dense`` builds; every concrete strategy sets it."""

    agent_id_input: bool = False
    """Add the one-hot agent id to the network's input (its first layer)."""

    def dense(
        self,
        features: int,
        num_agents: int,
        *,
        hidden: bool = True,
        depth: int = 0,
        agent_id_input: bool = False,
        kernel_init: Initializer = DEFAULT_KERNEL_INIT,
        name: str | None = None,
    ) -> AgentLayer:
        """An agent-indexed dense layer with ``features`` outputs.

        Args:
            features: O.
            num_agents: N, the number of distinct agent ids.
            hidden: False for output layers (SNP does not prune them).
            depth: 0-based position of the layer in its network (Kaleidoscope weights its
                diversity term by it).
            agent_id_input: whether this layer also receives the one-hot agent id; networks set
                it on their first layer when ``self.agent_id_input``.
            kernel_init: initializer of the equivalent dense kernel.
            name: flax module name.

        Returns:
            ``layer_class`` with these arguments and ``layer_fields(num_agents)``; called as
            ``layer(x [..., D], agent_ids) -> [..., O]``.
        """
        return self.layer_class(
            features=features,
            num_agents=num_agents,
            hidden=hidden,
            depth=depth,
            agent_id_input=agent_id_input,
            kernel_init=kernel_init,
            name=name,
            **self.layer_fields(num_agents),
        )

    def layer_fields(self, num_agents: int) -> dict[str, Any]:
        """Strategy-specific fields of ``layer_class`` for N agents (none by default).

        Keys are field names of ``layer_class`` beyond those of ``AgentLayer``, e.g. an agent ->
        group table of length N; values must be hashable (flax module fields).
        """
        del num_agents
        return {}

    @property
    def shared_recurrent(self) -> bool:
        """Whether a GRU's recurrent kernels are one plain ``SharedDense`` for all agents.

        True by default: most strategies share the recurrent kernels. False makes
        ``recurrent_dense`` build them with ``dense`` like any other layer.
        """
        return True

    def recurrent_dense(
        self,
        features: int,
        num_agents: int,
        *,
        kernel_init: Initializer = DEFAULT_KERNEL_INIT,
        name: str | None = None,
    ) -> AgentLayer:
        """A layer for a GRU's recurrent kernels, [..., H] -> [..., features].

        A ``SharedDense`` when ``shared_recurrent``, otherwise this strategy's own hidden layer
        at depth 0 (``dense``).
        """
        if not self.shared_recurrent:
            return self.dense(features, num_agents, kernel_init=kernel_init, name=name)
        return SharedDense(
            features=features, num_agents=num_agents, kernel_init=kernel_init, name=name
        )

    def recurrent_input_dense(
        self,
        features: int,
        num_agents: int,
        *,
        depth: int,
        kernel_init: Initializer = DEFAULT_KERNEL_INIT,
        name: str | None = None,
    ) -> AgentLayer:
        """The GRU's fused input projection W_i x + b_i, [..., D] -> [..., 3H].

        This strategy's hidden layer (``dense``), or a plain ``SharedDense`` where
        ``shared_recurrent_input`` (strategies whose original leaves the GRU alone).
        """
        if self.shared_recurrent_input:
            return SharedDense(
                features=features, num_agents=num_agents, kernel_init=kernel_init, name=name
            )
        return self.dense(features, num_agents, depth=depth, kernel_init=kernel_init, name=name)

    def recurrent_state_mask(
        self, hidden_size: int, num_agents: int, *, name: str | None = None
    ) -> AgentLayer | None:
        """A layer giving each sample's mask on the GRU's state; None: no mask (the default).

        Called as ``layer(x [..., D], ids) -> [..., H]``; the mask multiplies every step's new
        state.
        """
        del hidden_size, num_agents, name
        return None

    def aux_loss(self, variables: Variables, aux_state: Any) -> AuxOutput:
        """The weighted auxiliary loss to add to the RL loss, and metrics; zero by default."""
        del variables, aux_state
        return AuxOutput(jnp.zeros(()), {})

    @property
    def decoupled_aux(self) -> bool:
        """Whether the auxiliary gradient is applied outside the optimiser (``descend``).

        False by default: the auxiliary loss joins the RL loss and the optimiser (Adam) sees
        their sum.
        """
        return False

    def maintain(
        self,
        variables: Variables,
        key: jax.Array,
        step_before: jax.Array,
        step_after: jax.Array,
        total_steps: int,
    ) -> Variables:
        """Pure maintenance between updates (jit-safe); identity by default."""
        del key, step_before, step_after, total_steps
        return variables

    def weight_diagnostics(self, params: Any) -> dict[str, jax.Array]:
        """Per-layer weight statistics logged at every update, ``{"weights/<path>/...": []}``.

        By default the Frobenius norm of every plain kernel (``kernel`` leaves; NoPS's and
        SePS's stacked [G, D, O] ``group_kernel`` gives the mean of its groups' norms).
        Strategies with other layer forms report their own effective kernels (Prism:
        ``weights/<path>/kernel_norm`` and its spectra s ⊙ m).
        """
        metrics = {}
        plain = named_layers(params, frozenset({"kernel"}))
        grouped = named_layers(params, frozenset({"group_kernel"}))
        for path, kernel in [(p, la["kernel"]) for p, la in plain] + [
            (p, la["group_kernel"]) for p, la in grouped
        ]:
            norms = jnp.sqrt(jnp.sum(jnp.square(kernel), axis=(-2, -1)))
            metrics[f"weights/{path}/kernel_norm"] = jnp.mean(norms)
        return metrics

    def per_agent_leaves(self) -> tuple[str, ...]:
        """Names of parameter/buffer leaves that hold per-agent state (additional resource)."""
        return ("agent_id_kernel",)

    def additional_resource(self, variables: Variables, num_agents: int) -> int:
        """Per-agent state that grows with N, counted in numbers (method.md §3)."""
        del num_agents
        return sum(
            int(np.prod(leaf.shape))
            for name, leaf in iter_named_leaves(variables)
            if name in self.per_agent_leaves()
        )


@runtime_checkable
class Prepares(Protocol):
    """Capability: a host-side preparation after some training (SePS clusters its agents).

    The run trains ``preparation_steps``, hands ``prepare`` every seed's transitions, and
    continues with the strategy it returns (``run.phase``).
    """

    @property
    def preparation_steps(self) -> int:
        """Environment steps per seed to train before ``prepare`` runs; 0: no preparation.

        A prepared strategy (``prepare(...).strategy``) must report 0, so that preparation runs
        once.
        """
        ...

    def prepare(self, data: AgentTransitions, key: jax.Array) -> Preparation:
        """Host-side preparation from the transitions of the first ``preparation_steps``.

        Args:
            data: every seed's per-agent transitions, [S, P, N, ...] per field (seed s's
                pairs in ``data[s]``; seeds prepare from their own data).
            key: PRNG key.

        Returns:
            The strategy training continues with, and how one seed's variables carry over to
            it (``Preparation``).
        """
        ...

    def accounting_form(self, num_agents: int, groups: int) -> SharingStrategy:
        """This strategy as it would run with N agents, for counting resources before any data.

        ``groups``: how many groups to assume where the grouping comes from preparation, capped
        by the strategy at N. Returns a strategy whose ``dense`` builds a prepared run's layers.
        """
        ...


@runtime_checkable
class TracksLosses(Protocol):
    """Capability: state carried between updates for the auxiliary loss.

    Kaleidoscope's history of RL and diversity losses, which sets its adaptive coefficient.
    """

    def init_aux_state(self) -> Any:
        """The state before the first update (a pytree, carried inside jit)."""
        ...

    def update_aux_state(self, aux_state: Any, rl_loss: jax.Array, aux: AuxOutput) -> Any:
        """Advance the state after an update with RL loss ``rl_loss``."""
        ...


@runtime_checkable
class HasAgentMasks(Protocol):
    """Capability: per-agent masks worth drawing (Prism's masks on the singular values)."""

    def agent_masks(self, variables: Variables) -> dict[str, jax.Array]:
        """Each layer's per-agent masks, ``{"layer i": [N, R]}``, in layer order."""
        ...


def preparation_steps(strategy: SharingStrategy) -> int:
    """``strategy``'s preparation steps (``Prepares``), 0 for a strategy that does not prepare."""
    return strategy.preparation_steps if isinstance(strategy, Prepares) else 0


def accounting_form(strategy: SharingStrategy, num_agents: int, groups: int) -> SharingStrategy:
    """``Prepares.accounting_form``, or ``strategy`` itself for one that does not prepare."""
    if isinstance(strategy, Prepares):
        return strategy.accounting_form(num_agents, groups)
    return strategy


def init_aux_state(strategy: SharingStrategy) -> Any:
    """``TracksLosses.init_aux_state``, or ``()`` for a strategy that carries nothing."""
    return strategy.init_aux_state() if isinstance(strategy, TracksLosses) else ()


def update_aux_state(
    strategy: SharingStrategy, aux_state: Any, rl_loss: jax.Array, aux: AuxOutput
) -> Any:
    """``TracksLosses.update_aux_state``, or ``aux_state`` unchanged."""
    if isinstance(strategy, TracksLosses):
        return strategy.update_aux_state(aux_state, rl_loss, aux)
    return aux_state


def agent_masks(strategy: SharingStrategy, variables: Variables) -> dict[str, jax.Array]:
    """``HasAgentMasks.agent_masks``, or ``{}`` for a strategy without masks."""
    return strategy.agent_masks(variables) if isinstance(strategy, HasAgentMasks) else {}


def iter_named_leaves(tree: Any) -> Iterator[tuple[str, Any]]:
    """Yield (last key, leaf) for every leaf of a nested mapping."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from iter_named_leaves(value)
        else:
            yield str(key), value


def find_layers(tree: Any, required: frozenset[str]) -> list[Mapping[str, Any]]:
    """All sub-mappings of ``tree`` whose keys include ``required``, in key order."""
    return [layer for _, layer in named_layers(tree, required)]


def named_layers(
    tree: Any, required: frozenset[str], prefix: str = ""
) -> list[tuple[str, Mapping[str, Any]]]:
    """``find_layers`` with each layer's path: its keys joined by ``/``."""
    if not isinstance(tree, Mapping):
        return []
    if required <= set(tree.keys()):
        return [(prefix, tree)]
    found: list[tuple[str, Mapping[str, Any]]] = []
    for key in sorted(tree.keys()):
        found.extend(named_layers(tree[key], required, f"{prefix}/{key}" if prefix else str(key)))
    return found


def count_leaves(tree: Any) -> int:
    """Total number of scalars in a pytree of arrays or shape structs."""
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))


def map_layers(
    tree: Any, required: frozenset[str], fn: Callable[[Mapping[str, Any], int], Mapping[str, Any]]
) -> Any:
    """Copy of ``tree`` with ``fn(layer, index)`` applied to every sub-mapping holding ``required``.

    Layers are numbered in the order of ``find_layers``.
    """
    counter = [0]

    def visit(node: Any) -> Any:
        if not isinstance(node, Mapping):
            return node
        if required <= set(node.keys()):
            counter[0] += 1
            return fn(node, counter[0] - 1)
        return {key: visit(node[key]) for key in sorted(node.keys())}

    return visit(tree)
