"""Measure decision 0037's adaptation: SePS's VAE data, ours against the original's.

Ours is one rollout of the pretrained policy; the original's, transitions drawn across the
whole pretraining (its history).

For each task, every seed pretrains as a SePS run does (one shared network for
``pretrain_steps``), in ``--snapshots`` equal stretches; after each stretch one rollout's
worth of per-agent transitions of the current policy is collected (``agent_transitions``, what
our preparation uses). Ours clusters the last rollout alone; "history" clusters all of them
pooled, a sample of the original's data spread evenly over pretraining, from the untrained
policy on. Both cluster with the same key. Printed per task: each seed's two agent -> cluster
tables (as partitions) and whether they agree.

    python scripts/seps_vae_data.py --task mabrax:hopper_3x1 --preset mabrax --steps 60000
"""

from __future__ import annotations

import argparse
import json
import math

import jax
import jax.numpy as jnp

from prism_marl.presets import build_run_config
from prism_marl.programs import init_seeds, train_chunks
from prism_marl.run import build_algorithm, seed_keys


def partition(table: list[int]) -> tuple[int, ...]:
    """Cluster ids renamed in order of first appearance: equal tuples, equal partitions."""
    names: dict[int, int] = {}
    return tuple(names.setdefault(c, len(names)) for c in table)


def main() -> None:
    """Pretrain, collect, cluster both ways, print one JSON line per task."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--steps", type=int, required=True, help="pretraining steps per seed")
    parser.add_argument("--snapshots", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    config = build_run_config(
        sharing="seps",
        preset=args.preset,
        sharing_fields={"pretrain_steps": args.steps},
        env_fields={"id": args.task},
        run_fields={"num_seeds": args.seeds, "total_steps": 2 * args.steps},
    )
    algo = build_algorithm(config)
    per_update = algo.config.steps_per_update
    updates = max(1, math.ceil(args.steps / per_update / args.snapshots))
    chunk = train_chunks(algo, updates)
    state = init_seeds(algo)(seed_keys(config))
    slices = [algo.agent_transitions(state)]  # the untrained policy, as the original's start
    for _ in range(args.snapshots):
        state, _ = chunk(state)
        slices.append(algo.agent_transitions(state))
    pooled = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=1), *slices)
    key = jax.random.PRNGKey(config.seed + 7)
    ours = algo.strategy.prepare(slices[-1], key).record["cluster_of_agent"]
    history = algo.strategy.prepare(pooled, key).record["cluster_of_agent"]
    rows = [
        {"ours": partition(list(a)), "history": partition(list(b))}
        for a, b in zip(ours, history, strict=True)
    ]
    print(
        json.dumps(
            {
                "task": args.task,
                "pretrain_steps": updates * args.snapshots * per_update,
                "pairs_ours": int(slices[-1].obs.shape[1]),
                "pairs_history": int(pooled.obs.shape[1]),
                "seeds": rows,
                "agree": sum(r["ours"] == r["history"] for r in rows),
            }
        )
    )


if __name__ == "__main__":
    main()
