"""SePS: selective parameter sharing by clustering agents (Christianos et al., ICML 2021).

Before preparation every agent is in one cluster (the pretraining phase trains FuPS); after
``prepare`` each of the K clusters has its own network.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from prism_marl.errors import require
from prism_marl.rl.transitions import AgentTransitions
from prism_marl.sharing.base import Preparation, SharingStrategy, Variables
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
    """Agent -> cluster table set by ``prepare`` (None: not prepared, one cluster)."""

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
        if self.cluster_of_agent is not None:
            clusters = sorted(set(self.cluster_of_agent))
            require(
                clusters == list(range(len(clusters))),
                "sharing.cluster-of-agent",
                f"cluster ids must be 0..K-1 with none empty, got {self.cluster_of_agent}",
            )

    def groups(self, num_agents: int) -> tuple[int, ...]:
        """The agent -> cluster table for N agents (all zeros before preparation)."""
        if self.cluster_of_agent is None:
            return (0,) * num_agents
        require(
            len(self.cluster_of_agent) == num_agents,
            "sharing.cluster-of-agent",
            f"has {len(self.cluster_of_agent)} entries for {num_agents} agents",
        )
        return self.cluster_of_agent

    def layer_fields(self, num_agents: int) -> dict[str, Any]:
        """The agent -> cluster table (``groups``): one network per cluster."""
        return {"group_of_agent": self.groups(num_agents)}

    @property
    def shared_recurrent(self) -> bool:
        """False: clusters share nothing, recurrent kernels included."""
        return False

    @property
    def preparation_steps(self) -> int:
        """``pretrain_steps`` until the clusters are known, then 0."""
        return self.pretrain_steps if self.cluster_of_agent is None else 0

    def prepare(self, data: AgentTransitions, key: jax.Array) -> Preparation:
        """Cluster agents from pretraining transitions (VAE embeddings, k-means, Davies–Bouldin).

        Args:
            data: every seed's per-agent pretraining transitions, [T, N, ...] per field.
            key: PRNG key.

        Returns:
            This strategy with ``cluster_of_agent`` set, and its ``adopt_pretrained``.
        """
        clusters = cluster_agents(
            data,
            key,
            num_clusters=self.num_clusters,
            embedding_size=self.embedding_size,
            vae_epochs=self.vae_epochs,
            vae_lr=self.vae_lr,
            vae_batch_size=self.vae_batch_size,
            vae_kl_weight=self.vae_kl_weight,
        )
        prepared = dataclasses.replace(self, cluster_of_agent=clusters)
        return Preparation(prepared, prepared.adopt_pretrained)

    def accounting_form(self, num_agents: int, groups: int) -> SePS:
        """Round-robin clusters when unprepared: agent i in cluster i mod K.

        K = min(num_clusters, N), with ``groups`` standing in for a None ``num_clusters``.
        Clusters only exist after pretraining; counting resources needs a table of some size.
        """
        if self.cluster_of_agent is not None:
            return self
        wanted = groups if self.num_clusters is None else self.num_clusters
        clusters = max(1, min(wanted, num_agents))
        return dataclasses.replace(
            self, cluster_of_agent=tuple(i % clusters for i in range(num_agents))
        )

    def adopt_pretrained(self, pretrained: Variables, fresh: Variables) -> Variables:
        """Variables for the prepared strategy from the one-cluster pretrained ones (one seed).

        This is ``prepare``'s ``Preparation.adopt``. Every grouped leaf of ``pretrained`` has
        a leading axis of 1; with ``copy_init`` it is copied to all K clusters, otherwise only
        cluster 0 takes it and the others keep ``fresh`` values. Other leaves are taken from
        ``pretrained``.
        """

        def adopt(old: jax.Array, new: jax.Array) -> jax.Array:
            if old.shape == new.shape:
                return old
            if self.copy_init:
                return jnp.broadcast_to(old, new.shape)
            return new.at[0].set(old[0])

        return jax.tree_util.tree_map(adopt, dict(pretrained), dict(fresh))

    def additional_resource(self, variables: Variables, num_agents: int) -> int:
        """Networks beyond the first, one cluster index per agent, and any agent-id weights."""
        return (
            extra_group_resource(variables)
            + num_agents
            + super().additional_resource(variables, num_agents)
        )
