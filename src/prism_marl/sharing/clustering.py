"""SePS's host-side preparation: agent embeddings from a VAE, k-means, Davies–Bouldin choice of K.

Reference: Christianos et al., "Scaling Multi-Agent Reinforcement Learning with Selective
Parameter Sharing", ICML 2021. The VAE encodes the one-hot agent id to an embedding z and decodes
(observation, action, z) to (next observation, reward); the encoder means are clustered.
Axis glossary: T steps, N agents, D observation features, A action features, Z embedding, K
clusters.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from prism_marl.rl.transitions import AgentTransitions


class AgentVAE(nn.Module):
    """Encoder: one-hot id -> (μ, log σ²) [Z]; decoder: (obs, action, z) -> (next obs, reward)."""

    num_agents: int
    obs_size: int
    embedding_size: int = 10
    hidden: int = 64

    def setup(self) -> None:
        self.enc_hidden = nn.Dense(self.hidden)
        self.enc_mean = nn.Dense(self.embedding_size)
        self.enc_logvar = nn.Dense(self.embedding_size)
        self.dec_hidden = (nn.Dense(self.hidden), nn.Dense(self.hidden))
        self.dec_out = nn.Dense(self.obs_size + 1)

    def encode(self, ids: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Ids [B] -> (μ [B, Z], log σ² [B, Z])."""
        h = nn.relu(self.enc_hidden(jax.nn.one_hot(ids, self.num_agents)))
        return self.enc_mean(h), self.enc_logvar(h)

    def __call__(
        self, ids: jax.Array, obs: jax.Array, actions: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """Returns (predicted next obs [B, D], predicted reward [B], μ, log σ²)."""
        mean, logvar = self.encode(ids)
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
        h = jnp.concatenate([obs, actions, z], axis=-1)
        for layer in self.dec_hidden:
            h = nn.relu(layer(h))
        out = self.dec_out(h)
        return out[:, :-1], out[:, -1], mean, logvar


def vae_loss(
    predicted_obs: jax.Array,
    predicted_reward: jax.Array,
    next_obs: jax.Array,
    rewards: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    kl_weight: float,
) -> jax.Array:
    """Summed squared error of the reconstruction + kl_weight · KL(q(z|id) ‖ N(0, I)).

    Shapes: predicted_obs, next_obs [B, D]; predicted_reward, rewards [B]; mean, logvar [B, Z].
    Returns the batch mean.
    """
    reconstruction = jnp.sum(jnp.square(predicted_obs - next_obs), -1) + jnp.square(
        predicted_reward - rewards
    )
    kl = -0.5 * jnp.sum(1.0 + logvar - jnp.square(mean) - jnp.exp(logvar), -1)
    return jnp.mean(reconstruction + kl_weight * kl)


def agent_embeddings(
    data: AgentTransitions,
    key: jax.Array,
    *,
    embedding_size: int,
    epochs: int,
    lr: float,
    batch_size: int,
    kl_weight: float,
) -> np.ndarray:
    """Fit the VAE on the transitions and return each agent's encoder mean, [N, Z]."""
    num_steps, num_agents, obs_size = data.obs.shape
    flat = {
        "ids": jnp.tile(jnp.arange(num_agents), num_steps),
        "obs": data.obs.reshape(-1, obs_size),
        "actions": data.actions.reshape(num_steps * num_agents, -1).astype(jnp.float32),
        "rewards": data.rewards.reshape(-1),
        "next_obs": data.next_obs.reshape(-1, obs_size),
    }
    num_samples = num_steps * num_agents
    batch_size = min(batch_size, num_samples)
    batches_per_epoch = num_samples // batch_size
    model = AgentVAE(num_agents, obs_size, embedding_size)
    init_key, train_key = jax.random.split(key)
    params = model.init(init_key, flat["ids"][:1], flat["obs"][:1], flat["actions"][:1], init_key)[
        "params"
    ]
    optimizer = optax.adam(lr)

    def loss_fn(params, batch, noise_key):
        outputs: Any = model.apply(
            {"params": params}, batch["ids"], batch["obs"], batch["actions"], noise_key
        )
        pred_obs, pred_reward, mean, logvar = outputs
        return vae_loss(
            pred_obs, pred_reward, batch["next_obs"], batch["rewards"], mean, logvar, kl_weight
        )

    def epoch(carry, epoch_key):
        params, opt_state = carry
        perm_key, noise_key = jax.random.split(epoch_key)
        order = jax.random.permutation(perm_key, num_samples)[: batches_per_epoch * batch_size]
        batches = jax.tree_util.tree_map(
            lambda a: a[order].reshape(batches_per_epoch, batch_size, *a.shape[1:]), flat
        )

        def step(carry, inputs):
            params, opt_state = carry
            batch, step_key = inputs
            grads = jax.grad(loss_fn)(params, batch, step_key)
            updates, opt_state = optimizer.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), None

        step_keys = jax.random.split(noise_key, batches_per_epoch)
        return jax.lax.scan(step, (params, opt_state), (batches, step_keys))[0], None

    (params, _), _ = jax.jit(lambda p, o, keys: jax.lax.scan(epoch, (p, o), keys))(
        params, optimizer.init(params), jax.random.split(train_key, epochs)
    )
    mean, _ = model.apply({"params": params}, jnp.arange(num_agents), method=AgentVAE.encode)
    return np.asarray(mean)


def kmeans(
    points: np.ndarray, num_clusters: int, seed: int, num_restarts: int = 10, iters: int = 100
) -> tuple[np.ndarray, float]:
    """Lloyd's k-means with k-means++ seeding; best of ``num_restarts`` by inertia.

    Args:
        points: [P, Z].
        num_clusters: K ≤ P.
        seed: seed of the k-means++ draws.
        num_restarts: independent restarts; the lowest inertia wins.
        iters: at most this many Lloyd iterations per restart.

    Returns:
        (labels [P] in 0..K−1, relabelled by first appearance; inertia Σ‖x − c‖²).
    """
    rng = np.random.default_rng(seed)
    best_labels, best_inertia = np.zeros(len(points), np.int64), np.inf
    for _ in range(num_restarts):
        centers = [points[rng.integers(len(points))]]
        for _ in range(1, num_clusters):
            dist = np.min(((points[:, None] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
            probs = dist / dist.sum() if dist.sum() > 0 else np.full(len(points), 1 / len(points))
            centers.append(points[rng.choice(len(points), p=probs)])
        center_arr = np.asarray(centers, dtype=np.float64)
        for _ in range(iters):
            labels = np.argmin(((points[:, None] - center_arr[None]) ** 2).sum(-1), axis=1)
            new_centers = np.array(
                [
                    points[labels == k].mean(0) if np.any(labels == k) else center_arr[k]
                    for k in range(num_clusters)
                ]
            )
            if np.allclose(new_centers, center_arr):
                break
            center_arr = new_centers
        inertia = float(((points - center_arr[labels]) ** 2).sum())
        if inertia < best_inertia - 1e-12:
            best_labels, best_inertia = labels, inertia
    relabel: dict[int, int] = {}
    for label in best_labels:
        relabel.setdefault(int(label), len(relabel))
    return np.array([relabel[int(label)] for label in best_labels]), best_inertia


def davies_bouldin(points: np.ndarray, labels: np.ndarray) -> float:
    """Davies–Bouldin index: mean over clusters i of max_{j≠i} (S_i + S_j) / ‖c_i − c_j‖.

    S_i is the mean distance of cluster i's points to its centroid c_i (Davies & Bouldin, 1979).
    Lower is better; needs at least two clusters. One point cannot show a cluster's spread, and
    S = 0 for singletons makes the plain index favour K = P − 1 whenever real clusters have any
    spread; a singleton's S is therefore the mean S of the clustering's multi-point clusters
    (docs/decisions/0004-seps-davies-bouldin.md).
    """
    clusters = np.unique(labels)
    sizes = np.array([np.sum(labels == k) for k in clusters])
    centers = np.array([points[labels == k].mean(0) for k in clusters])
    scatter = np.array(
        [
            np.linalg.norm(points[labels == k] - centers[i], axis=1).mean()
            for i, k in enumerate(clusters)
        ]
    )
    if np.any(sizes > 1):
        scatter = np.where(sizes > 1, scatter, scatter[sizes > 1].mean())
    separation = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (scatter[:, None] + scatter[None]) / separation
    ratio = np.where(np.isnan(ratio), 0.0, ratio)
    np.fill_diagonal(ratio, -np.inf)
    return float(np.mean(np.max(ratio, axis=1)))


def choose_clusters(points: np.ndarray, num_clusters: int | None, seed: int) -> tuple[int, ...]:
    """k-means labels for a given K, or for the K in 2..P−1 with the lowest Davies–Bouldin index.

    With fewer than three points and no K given, every point is its own cluster (no K in
    2..P−1 exists to compare).
    """
    num_points = len(points)
    if num_clusters is not None:
        return tuple(int(v) for v in kmeans(points, min(num_clusters, num_points), seed)[0])
    if num_points < 3:
        return tuple(range(num_points))
    scored = []
    for k in range(2, num_points):
        labels, _ = kmeans(points, k, seed)
        scored.append((davies_bouldin(points, labels), k, labels))
    _, _, labels = min(scored, key=lambda item: (item[0], item[1]))
    return tuple(int(v) for v in labels)


def cluster_agents(
    data: AgentTransitions,
    key: jax.Array,
    *,
    num_clusters: int | None,
    embedding_size: int,
    vae_epochs: int,
    vae_lr: float,
    vae_batch_size: int,
    vae_kl_weight: float,
) -> tuple[int, ...]:
    """SePS preparation: agent -> cluster table from pretraining transitions.

    Fits the VAE (``agent_embeddings``) on ``data`` ([T, N, ...] per field), then clusters the N
    agents' embeddings (``choose_clusters``). Plain hyper-parameters rather than the SePS config,
    so that this module does not depend on the strategy that uses it.

    Returns:
        A length-N tuple of cluster ids in 0..K−1, relabelled by first appearance.
    """
    embed_key, seed_key = jax.random.split(key)
    embeddings = agent_embeddings(
        data,
        embed_key,
        embedding_size=embedding_size,
        epochs=vae_epochs,
        lr=vae_lr,
        batch_size=vae_batch_size,
        kl_weight=vae_kl_weight,
    )
    seed = int(jax.random.randint(seed_key, (), 0, 2**31 - 1))
    return choose_clusters(embeddings, num_clusters, seed)
