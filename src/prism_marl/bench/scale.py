"""``prism-marl bench scale``: what every strategy costs as the number of agents grows.

The measured twin of the paper's Figure 5. For each N the task is LBF with N agents and N foods
on the smallest grid whose spawn rule always places them (``scale_task``), trained by the
chosen algorithm on a fixed network (the algorithm's hidden sizes) with a small rollout, one
seed. Per strategy:

- the training state's bytes from shapes (nothing allocated), split into parameters, optimiser
  state, the per-agent part (the strategy's agent-indexed leaves, with their optimiser moments)
  and the rest (environments, rollout carry);
- the chunk's peak: XLA's buffer assignment for one training chunk (arguments plus temporaries),
  read from the compiled program before any state exists, so a strategy that cannot fit gets a
  row saying so instead of an out-of-memory kill;
- checkpoint bytes (the state written by orbax, as a run writes it);
- environment steps per second of the training chunk, timed round-robin over the strategies of
  one N so that machine drift hits them alike, and the ratio to FuPS;
- the time of one forward pass (``act`` on every environment's step).

LBF's observation lists every agent and food, so each agent's input grows as 6N and MAPPO's
centralised state as 6N²: those costs are the environment's and every strategy pays them; the
``over_fups_bytes`` column isolates what the strategy adds.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from prism_marl.config import EnvConfig, RunConfig, default_algo_config
from prism_marl.envs.lbf_rules import guaranteed_food_capacity
from prism_marl.memory import available_bytes
from prism_marl.sharing import STRATEGIES

DEFAULT_AGENTS = (2, 8, 32, 128, 512)
MEMORY_MARGIN = 0.8
"""Share of the available memory one strategy's chunk may plan to use (other processes, and
XLA's own allocations beside its buffer assignment, take the rest)."""


def scale_task(num_agents: int) -> str:
    """``lbf:GxG-Np-Nf`` on the smallest grid whose spawn rule always places N foods."""
    grid = 5
    while guaranteed_food_capacity(grid, num_agents) < num_agents:
        grid += 1
    return f"lbf:{grid}x{grid}-{num_agents}p-{num_agents}f"


def tree_bytes(tree: Any) -> int:
    """Bytes of every array (or shape) in ``tree``."""
    return sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def _leaf_name(path: tuple[Any, ...]) -> str:
    last = path[-1] if path else None
    return str(getattr(last, "key", getattr(last, "name", "")))


def state_breakdown(state: Any, per_agent_leaves: Sequence[str]) -> dict[str, int]:
    """Bytes of a learner state (arrays or shapes) by part.

    ``parameters``: ``variables["params"]``; ``optimizer``: the ``*opt_state`` fields;
    ``per_agent``: the leaves named in ``per_agent_leaves`` wherever they sit (parameters,
    buffers and the optimiser's moments of them); ``other``: everything else (environments,
    rollout carry, replay); ``total``. NoPS's and SePS's per-agent networks are ordinary
    parameters, not named leaves: their growth shows in ``total``.
    """
    named = jax.tree_util.tree_flatten_with_path(state)[0]
    per_agent = sum(
        math.prod(leaf.shape) * leaf.dtype.itemsize
        for path, leaf in named
        if _leaf_name(path) in per_agent_leaves
    )
    parameters = tree_bytes(state.variables["params"])
    # MATD3 keeps one optimiser state per network.
    optimizer = sum(
        tree_bytes(getattr(state, field))
        for field in state._fields
        if field == "opt_state" or field.endswith("_opt_state")
    )
    total = tree_bytes(state)
    buffers = tree_bytes(state.variables.get("buffers", {}))
    return {
        "parameters": parameters,
        "optimizer": optimizer,
        "per_agent": per_agent,
        "other": total - parameters - optimizer - buffers,
        "total": total,
    }


def checkpoint_bytes(state: Any) -> int:
    """Bytes on disk of ``state`` saved by orbax's StandardSave (what a run's checkpoint holds)."""
    import orbax.checkpoint as ocp

    directory = Path(tempfile.mkdtemp(prefix="prism-scale-"))
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(directory / "state", state)
        return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@dataclasses.dataclass
class _Compiled:
    """One strategy's compiled chunk at one N, its state, and the row measured of it."""

    row: dict[str, Any]
    chunk: Callable[[Any], Any] | None = None
    state: Any = None


def _forward_seconds(algo: Any, variables: Any, num_envs: int, repeats: int) -> float:
    """Median seconds of one jitted ``act`` over ``num_envs`` environments' steps."""
    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    step = jax.vmap(algo.env.reset)(keys)[1]
    carry = algo.initial_carry(num_envs)
    starts = jnp.ones((num_envs,), bool)
    act = jax.jit(lambda v, c, s, k: algo.act(v, c, s, starts, k, True))
    jax.block_until_ready(act(variables, carry, step, keys[0]))
    times = []
    for i in range(max(repeats, 3)):
        start = time.perf_counter()
        jax.block_until_ready(act(variables, carry, step, keys[i % num_envs]))
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _prepare(config: RunConfig, updates: int, available: int | None) -> _Compiled:
    """Compile one strategy's chunk from shapes; allocate and warm it up only if it fits."""
    from prism_marl.programs import init_seeds, train_chunks
    from prism_marl.run import build_algorithm, seed_keys

    algo = build_algorithm(config)
    keys = seed_keys(config)
    shapes = jax.eval_shape(init_seeds(algo), keys)
    parts = state_breakdown(shapes, algo.strategy.per_agent_leaves())
    compiled = train_chunks(algo, updates).trace(shapes).lower().compile()
    analysis = compiled.memory_analysis()
    peak = parts["total"] + int(getattr(analysis, "temp_size_in_bytes", 0))
    row: dict[str, Any] = {
        "num_agents": algo.spec.num_agents,
        "env": config.env.id,
        "strategy": config.sharing.name,
        "per_agent_numbers": None,
        "state_bytes": parts["total"],
        "parameter_bytes": parts["parameters"],
        "optimizer_bytes": parts["optimizer"],
        "per_agent_bytes": parts["per_agent"],
        "other_bytes": parts["other"],
        "peak_bytes": peak,
        "fits": available is None or peak <= available,
    }
    if not row["fits"]:
        row["note"] = (
            f"needs {peak / 2**30:.1f} GiB, {available / 2**30:.1f} GiB available"
            if available is not None
            else ""
        )
        return _Compiled(row)
    state = init_seeds(algo)(keys)
    jax.block_until_ready(state)
    variables = jax.tree.map(lambda x: x[0], state.variables)
    row["per_agent_numbers"] = algo.strategy.additional_resource(variables, algo.spec.num_agents)
    row["checkpoint_bytes"] = checkpoint_bytes(state)
    row["forward_seconds"] = _forward_seconds(algo, variables, config.algo_config.num_envs, 5)
    state, _ = compiled(state)  # warm up
    jax.block_until_ready(state)
    return _Compiled(row, compiled, state)


def _time_pair(pair: Sequence[_Compiled], repeats: int) -> list[float]:
    """Seconds of ``repeats`` chunks of each entry, called alternately (drift hits both)."""
    seconds = [0.0 for _ in pair]
    for _ in range(repeats):
        for i, entry in enumerate(pair):
            assert entry.chunk is not None
            start = time.perf_counter()
            entry.state, metrics = entry.chunk(entry.state)
            jax.block_until_ready(metrics)
            seconds[i] += time.perf_counter() - start
    return seconds


def _usable_bytes() -> int | None:
    """Memory a new state may take: the kernel's estimate, less a margin for other processes."""
    available = available_bytes()
    return None if available is None else int(available * MEMORY_MARGIN)


def bench_scale(
    agents: Sequence[int],
    strategies: Sequence[str],
    *,
    algo: str = "mappo",
    num_envs: int = 2,
    rollout_length: int = 32,
    updates: int = 1,
    repeats: int = 3,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``bench scale``: one per (N, strategy), FuPS first at every N.

    At most two states live at once: FuPS's, and the strategy timed against it (their chunks
    alternate), so what fits is decided strategy by strategy against the memory then available.
    ``report`` gets each row as soon as it is measured (a long benchmark shows its progress).
    """
    algo_config = default_algo_config(algo)
    changes = {"num_envs": num_envs, "rollout_length": rollout_length}
    algo_config = dataclasses.replace(
        algo_config, **{k: v for k, v in changes.items() if hasattr(algo_config, k)}
    )
    steps = algo_config.steps_per_update * updates * repeats
    rows: list[dict[str, Any]] = []

    def finish(
        row: dict[str, Any], seconds: float | None, ratio: float | None, at: int | None = None
    ) -> None:
        if seconds is not None:
            row["steps_per_second"] = round(steps / seconds, 1)
            row["agent_steps_per_second"] = round(steps * row["num_agents"] / seconds, 1)
            row["ratio_to_fups"] = None if ratio is None else round(ratio, 3)
        rows.insert(len(rows) if at is None else at, row)
        if report is not None:
            report(row)

    for num_agents in agents:

        def prepare(name: str, num_agents: int = num_agents) -> _Compiled:
            config = RunConfig(
                algo=algo,
                sharing=STRATEGIES[name](),
                env=EnvConfig(id=scale_task(num_agents)),
                algo_config=algo_config,
                num_seeds=1,
                total_steps=10**9,
            )
            return _prepare(config, updates, _usable_bytes())

        first = len(rows)  # FuPS's row goes first, once every pairing has timed it
        reference = prepare("fups")
        reference.row["over_fups_bytes"] = 0
        own = [0.0, 0]  # FuPS's seconds over every pairing, and the pairings
        for name in dict.fromkeys(n for n in strategies if n != "fups"):
            entry = prepare(name)
            entry.row["over_fups_bytes"] = entry.row["state_bytes"] - reference.row["state_bytes"]
            if entry.chunk is None:
                finish(entry.row, None, None)
                continue
            if reference.chunk is None:
                finish(entry.row, _time_pair([entry], repeats)[0], None)
            else:
                fups_seconds, seconds = _time_pair([reference, entry], repeats)
                own = [own[0] + fups_seconds, own[1] + 1]
                finish(entry.row, seconds, fups_seconds / seconds)
            entry.state = None
        if reference.chunk is not None and own[1] == 0:
            own = [_time_pair([reference], repeats)[0], 1]
        finish(reference.row, own[0] / own[1] if own[1] else None, 1.0, at=first)
        reference.state = None
    return rows


def plot_scale(rows: list[dict[str, Any]], path: str) -> None:
    """Two panels against N: training-state bytes and chunk time relative to FuPS (a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (memory, speed) = plt.subplots(1, 2, figsize=(10, 4))
    for strategy in dict.fromkeys(row["strategy"] for row in rows):
        mine = [row for row in rows if row["strategy"] == strategy]
        n = [row["num_agents"] for row in mine]
        memory.plot(n, [row["state_bytes"] / 2**20 for row in mine], marker="o", label=strategy)
        timed = [row for row in mine if row.get("ratio_to_fups")]
        speed.plot(
            [row["num_agents"] for row in timed],
            [1 / row["ratio_to_fups"] for row in timed],
            marker="o",
            label=strategy,
        )
    for axis in (memory, speed):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("agents N")
        axis.grid(alpha=0.3)
    memory.set_yscale("log")
    memory.set_ylabel("training state (MiB)")
    speed.set_yscale("log")  # a strategy many times slower would flatten the others
    speed.set_ylabel("training chunk time / FuPS's")
    memory.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
