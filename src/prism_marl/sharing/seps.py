"""SePS: selective parameter sharing by clustering agents (Christianos et al., ICML 2021).

Before preparation every agent is in one cluster (the pretraining phase trains FuPS); after
``prepare`` each of the K clusters has its own network. Each seed clusters its own agents from
its own transitions with its own key, as each run of the original does; the seeds' agent ->
cluster tables are ``buffers`` leaves (``GroupedDense.table_in_buffers``) of one program with K
networks per layer, K the most clusters any seed found (docs/decisions/0036).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from prism_marl.errors import require
from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing.base import Preparation, SharingStrategy, Variables, iter_named_leaves
from prism_marl.sharing.clustering import cluster_agents
from prism_marl.sharing.nops import GroupedDense, extra_group_resource


@dataclasses.dataclass(frozen=True)
class SePS(SharingStrategy):
    """Selective parameter sharing: one network per cluster of agents."""

    name = "seps"
    layer_class = GroupedDense

    num_clusters: int | None = None
    """K; None chooses K in 2..N−1 by the lowest Davies–Bouldin index."""
    pretrain_steps: int = 200_000
    """Environment steps (≥ 1) of one-cluster training before the clustering runs."""
    copy_init: bool = True
    """Start every cluster's network from the pretrained one (else only cluster 0 keeps it)."""
    embedding_size: int = 10
    """Size of the VAE's agent embedding."""
    vae_epochs: int = 10
    """Passes over the pretraining transitions when fitting the VAE."""
    vae_lr: float = 3e-4
    """Adam learning rate of the VAE."""
    vae_batch_size: int = 128
    """Minibatch size of the VAE."""
    vae_kl_weight: float = 1e-4
    """Weight of the KL term in the VAE loss."""
    cluster_of_agent: tuple[int, ...] | None = None
    """A fixed agent -> cluster table for every seed, no pretraining (None: clusters come from
    pretraining)."""
    prepared_clusters: int | None = None
    """Set by ``prepare``: K networks per layer, the most clusters any seed found; each seed's
    agent -> cluster table is then a buffer (None: not prepared)."""

    def __post_init__(self) -> None:
        require(
            self.num_clusters is None or self.num_clusters >= 1,
            "sharing.num-clusters",
            f"must be a positive integer or None, got {self.num_clusters}",
        )
        # 0 would mean "no preparation" (``preparation_steps``): one cluster forever.
        require(
            self.pretrain_steps >= 1,
            "sharing.pretrain-steps",
            "must be >= 1 (clusters come from pretraining; use fups for no clustering, or "
            "sharing.cluster-of-agent for fixed clusters)",
        )
        require(self.embedding_size >= 1, "sharing.embedding-size", "must be >= 1")
        require(self.vae_epochs >= 1, "sharing.vae-epochs", "must be >= 1")
        require(self.vae_batch_size >= 1, "sharing.vae-batch-size", "must be >= 1")
        require(
            self.prepared_clusters is None or self.prepared_clusters >= 1,
            "sharing.prepared-clusters",
            f"must be a positive integer or None, got {self.prepared_clusters}",
        )
        if self.cluster_of_agent is not None:
            clusters = sorted(set(self.cluster_of_agent))
            require(
                clusters == list(range(len(clusters))),
                "sharing.cluster-of-agent",
                f"cluster ids must be 0..K-1 with none empty, got {self.cluster_of_agent}",
            )

    def groups(self, num_agents: int) -> tuple[int, ...]:
        """The static agent -> cluster table for N agents.

        ``cluster_of_agent`` when fixed; once prepared, the initial table of the per-seed
        buffers, round-robin over K (every seed's own table replaces it, ``adopt_pretrained``);
        all zeros before preparation.
        """
        if self.cluster_of_agent is not None:
            require(
                len(self.cluster_of_agent) == num_agents,
                "sharing.cluster-of-agent",
                f"has {len(self.cluster_of_agent)} entries for {num_agents} agents",
            )
            return self.cluster_of_agent
        if self.prepared_clusters is not None:
            return round_robin(num_agents, self.prepared_clusters)
        return (0,) * num_agents

    def layer_fields(self, num_agents: int) -> dict[str, Any]:
        """The agent -> cluster table (``groups``), in buffers once prepared from data."""
        return {
            "group_of_agent": self.groups(num_agents),
            "table_in_buffers": self.prepared_clusters is not None,
        }

    @property
    def shared_recurrent(self) -> bool:
        """False: clusters share nothing, recurrent kernels included."""
        return False

    @property
    def preparation_steps(self) -> int:
        """``pretrain_steps`` until the clusters are known, then 0."""
        prepared = self.cluster_of_agent is not None or self.prepared_clusters is not None
        return 0 if prepared else self.pretrain_steps

    def prepare(self, data: AgentTransitions, key: jax.Array) -> Preparation:
        """Cluster each seed's agents from its own pretraining transitions.

        Per seed: VAE embeddings, k-means, K by Davies–Bouldin unless ``num_clusters``
        (``clustering.cluster_agents``), with key ``fold_in(key, seed)``.

        Args:
            data: per-agent pretraining transitions, [S, P, N, ...] per field.
            key: PRNG key.

        Returns:
            This strategy with ``prepared_clusters`` = the most clusters of any seed, its
            ``adopt_pretrained``, each seed's table as ``per_seed`` ([S, N] int32) and as
            ``record["cluster_of_agent"]``.
        """
        num_seeds = data.obs.shape[0]
        tables = [
            cluster_agents(
                jax.tree_util.tree_map(lambda x, s=seed: x[s], data),
                jax.random.fold_in(key, seed),
                num_clusters=self.num_clusters,
                embedding_size=self.embedding_size,
                vae_epochs=self.vae_epochs,
                vae_lr=self.vae_lr,
                vae_batch_size=self.vae_batch_size,
                vae_kl_weight=self.vae_kl_weight,
            )
            for seed in range(num_seeds)
        ]
        # One program serves all seeds, so every layer has as many networks as the seed with
        # the most clusters; a seed with fewer leaves the rest untrained (padding).
        prepared = dataclasses.replace(
            self, prepared_clusters=max(max(table) + 1 for table in tables)
        )
        return Preparation(
            prepared,
            prepared.adopt_pretrained,
            per_seed=jnp.asarray(tables, jnp.int32),
            record={"cluster_of_agent": [list(table) for table in tables]},
        )

    def accounting_form(self, num_agents: int, groups: int) -> SePS:
        """Round-robin clusters when unprepared: agent i in cluster i mod K.

        K = min(num_clusters, N), with ``groups`` standing in for a None ``num_clusters``.
        Clusters only exist after pretraining; counting resources needs a table of some size.
        """
        if self.cluster_of_agent is not None or self.prepared_clusters is not None:
            return self
        wanted = groups if self.num_clusters is None else self.num_clusters
        return dataclasses.replace(
            self, cluster_of_agent=round_robin(num_agents, max(1, min(wanted, num_agents)))
        )

    def adopt_pretrained(
        self, pretrained: Variables, fresh: Variables, table: jax.Array | None = None
    ) -> Variables:
        """Variables for the prepared strategy from the one-cluster pretrained ones (one seed).

        This is ``prepare``'s ``Preparation.adopt``. Every grouped leaf of ``pretrained`` has
        a leading axis of 1; with ``copy_init`` it is copied to all K clusters, otherwise only
        cluster 0 takes it and the others keep ``fresh`` values. Every ``group_of_agent``
        buffer becomes ``table`` (this seed's clusters, [N]; None keeps ``fresh``'s). Other
        leaves are taken from ``pretrained``; the result has ``fresh``'s tree.
        """

        def adopt(path: tuple[str, ...], new: jax.Array) -> jax.Array:
            if path[-1] == "group_of_agent":
                return new if table is None else jnp.asarray(table, new.dtype)
            old = pretrained_leaves[path]
            if old.shape == new.shape:
                return old
            if self.copy_init:
                return jnp.broadcast_to(old, new.shape)
            return new.at[0].set(old[0])

        # The pretrained tree has no table buffers (one static cluster), so walk fresh's.
        pretrained_leaves = traverse_util.flatten_dict(unfreeze_tree(pretrained))
        fresh_leaves = traverse_util.flatten_dict(unfreeze_tree(fresh))
        adopted = {path: adopt(path, leaf) for path, leaf in fresh_leaves.items()}
        return traverse_util.unflatten_dict(adopted)

    def additional_resource(self, variables: Variables, num_agents: int) -> int:
        """Networks beyond the first, one cluster index per agent, and any agent-id weights.

        Networks are counted for the clusters this seed's table uses, not the padding up to
        the most clusters of any seed.
        """
        tables = [leaf for name, leaf in iter_named_leaves(variables) if name == "group_of_agent"]
        # Shape structs (counting resources before any data) hold no table: count all groups.
        concrete = tables and isinstance(tables[0], np.ndarray | jax.Array)
        used = len(np.unique(np.asarray(tables[0]))) if concrete else None
        return (
            extra_group_resource(variables, used)
            + num_agents
            + super().additional_resource(variables, num_agents)
        )


def round_robin(num_agents: int, num_clusters: int) -> tuple[int, ...]:
    """Agent i in cluster i mod K."""
    return tuple(i % num_clusters for i in range(num_agents))


def unfreeze_tree(tree: Variables) -> dict[str, Any]:
    """A nested plain dict of a (possibly frozen) variables mapping."""
    return {
        key: unfreeze_tree(value) if isinstance(value, Mapping) else value
        for key, value in tree.items()
    }
