"""Small results directories in the real file formats, with numbers chosen by hand.

Written with the project's own writers (``results.write_json`` / ``write_jsonl``,
``sweep.index.save_index``), laid out as ``prism-marl sweep`` and ``prism-marl train`` lay them
out. Every final return below is what the tests recompute by hand.
"""

from pathlib import Path

import pytest

from prism_marl.config import to_dict
from prism_marl.results import write_json, write_jsonl
from prism_marl.sweep.index import IndexEntry, save_index
from tests.conftest import tiny_config

LBF, SMAX, LBF10 = "lbf:8x8-2p-2f-coop", "smax:smacv2_5_units", "lbf:10x10-3p-3f"
STEPS = (0, 100, 200)

# Figure 2 (quick): final returns per seed; the untrained policy returns 0.1 on LBF, 0 on SMAX.
FIGURE2 = {
    ("prism", LBF): [0.2, 0.9, 0.5],
    ("fups", LBF): [0.1, 0.3, 0.2],
    ("prism", SMAX): [0.6, 0.6, 0.7],
    ("fups", SMAX): [0.6, 0.5, 0.4],
}
RANDOM = {LBF: 0.1, SMAX: 0.0, LBF10: 0.2}
# Figure 4 (quick): per (method, budget), every seed's final return on LBF.
FIGURE4 = {
    ("prism", "full"): 0.8,
    ("prism", "half"): 0.5,
    ("fups", "full"): 0.6,
    ("fups", "half"): 0.6,
}
ABLATIONS = {"prism": [0.3, 0.6, 0.3], "rank-1-2": [0.4, 0.4, 0.4]}


def origin(method, task, scale="quick", budget=None):
    """The index's origin, as ``PlannedRun.record`` writes it."""
    return {
        "method": method,
        "backbone": "mappo",
        "task": task,
        "scale": scale,
        "budget": budget,
        "width": {"full": 64, "half": 40}.get(budget),
        "algo": "mappo",
        "sharing": "prism" if method.startswith(("prism", "rank")) else method,
        "num_seeds": 3,
        "total_steps": STEPS[-1],
    }


def metrics(task, finals, method, steps=STEPS):
    """metrics.jsonl: a straight line per seed from the untrained return to its final one."""
    records = []
    for step in steps:
        for seed, final in enumerate(finals):
            fraction = step / STEPS[-1]
            record = {
                "seed": seed,
                "env_steps": step,
                "wall_time": step / 100,
                "eval_return": RANDOM[task] + fraction * (final - RANDOM[task]),
                "steps_per_second": 100.0 if step else 0.0,
                "eval/snd": 0.1 * seed + fraction,
                "train/optimizer_steps": step // 10,
            }
            if task.startswith("smax"):
                record["eval_win_rate"] = fraction / 2
            if step and method.startswith(("prism", "rank")):
                record["prism/mask_distance"] = 0.05 * fraction
                record["prism/effective_rank"] = 4.0 - fraction
                record["prism/effective_rank_per_agent"] = [4.0, 4.0]
                record["loss/policy"] = -0.01
            records.append(record)
    return records


def summary(task, finals, **extra):
    """summary.json as ``Evaluator.final`` makes it (the keys the report reads, and more)."""
    data = {
        "algo": "mappo",
        "env": task,
        "num_seeds": len(finals),
        "env_steps": STEPS[-1],
        "final_return_mean": sum(finals) / len(finals),
        "final_returns": finals,
        "wall_seconds": 2.0,
        "steps_per_second": 100.0,
        "parameters": 1000,
        "actor_parameters": 600,
        "additional": 24,
        **extra,
    }
    if task.startswith("smax"):
        data["final_win_rate_mean"] = 0.25
    return data


EPISODES = 4
"""Evaluation episodes per seed in marl_eval.json's steps (the absolute metric: 10 times)."""


def marl_eval(task, finals, method):
    """marl_eval.json as ``store.marl_eval_table`` makes it: every seed's episodes per step.

    Episode returns spread ±0.05 around the seed's line in ``metrics``; the best policy's
    episodes around its final return.
    """
    family, _, name = task.partition(":")
    spread = [-0.05, 0.05] * (EPISODES // 2)
    records = metrics(task, finals, method)
    runs = {}
    for seed, final in enumerate(finals):
        mine = [r for r in records if r["seed"] == seed]
        run = {
            f"step_{k}": {
                "step_count": r["env_steps"],
                "return": [r["eval_return"] + d for d in spread],
            }
            for k, r in enumerate(mine)
        }
        run["absolute_metrics"] = {"return": [final + d for d in spread * 10]}
        runs[f"run_{seed}"] = run
    sharing = origin(method, task)["sharing"]
    return {family: {name: {f"mappo_{sharing}": runs}}}


def write_run(results: Path, entries, run_id, method, task, finals, *, budget=None, **extra):
    """A finished run: index entry, config.json, metrics.jsonl, summary.json, marl_eval.json
    (and masks for Prism)."""
    run_dir = results / run_id
    entries[run_id] = IndexEntry(
        run_id, "0" * 12, "finished", 1, 2.0, 0, "", origin(method, task, budget=budget)
    )
    write_json(run_dir / "config.json", to_dict(tiny_config(run_id)))
    write_jsonl(run_dir / "metrics.jsonl", metrics(task, finals, method))
    write_json(run_dir / "summary.json", summary(task, finals, **extra))
    write_json(run_dir / "marl_eval.json", marl_eval(task, finals, method))
    if method.startswith(("prism", "rank")):
        masks = [[[0.9, 0.5, 0.1], [0.2, 0.6, 0.8]] for _ in finals]  # [seed][agent][r]
        write_json(run_dir / "agent_masks.json", {"layer 0": masks, "layer 1": masks})


def sweep_dir(root: Path, experiment: str) -> tuple[Path, dict]:
    """An empty sweep results directory with its sweep.json."""
    results = root / f"{experiment}-quick"
    results.mkdir(parents=True)
    write_json(
        results / "sweep.json",
        {"experiment": experiment, "file": f"experiments/{experiment}.toml", "scale": "quick"},
    )
    return results, {}


@pytest.fixture(scope="module")
def results_dirs(tmp_path_factory):
    """Three sweeps (Figure 2, Figure 4, ablations) and one ``prism-marl train`` run."""
    root = tmp_path_factory.mktemp("results")
    figure2, entries = sweep_dir(root, "figure2")
    for (method, task), finals in FIGURE2.items():
        extra = {}
        if (method, task) == ("prism", LBF):  # the evaluation-mode keys of newer summaries
            extra = {
                "eval_mode": "sampled",
                "final_returns_sampled": finals,
                "final_returns_greedy": [0.1, 0.2, 0.3],
            }
        run_id = f"{method}__mappo__{task}__quick"
        write_run(figure2, entries, run_id, method, task, finals, **extra)
    # A failed run with two evaluation points, a pending one never started, and one the index
    # calls finished whose summary.json is missing.
    failed = "nops__mappo__lbf__quick"
    entries[failed] = IndexEntry(
        failed, "1" * 12, "failed", 3, 5.0, 1, "RuntimeError: boom", origin("nops", LBF)
    )
    write_jsonl(figure2 / failed / "metrics.jsonl", metrics(LBF, [0.4] * 3, "nops", STEPS[:2]))
    pending = "snp__mappo__lbf__quick"
    entries[pending] = IndexEntry(pending, "2" * 12, origin=origin("snp", LBF))
    lost = "seps__mappo__lbf__quick"
    entries[lost] = IndexEntry(lost, "3" * 12, "finished", 1, 2.0, 0, "", origin("seps", LBF))
    write_jsonl(figure2 / lost / "metrics.jsonl", metrics(LBF, [0.3] * 3, "seps"))
    save_index(figure2, entries)

    figure4, entries = sweep_dir(root, "figure4")
    for (method, budget), final in FIGURE4.items():
        run_id = f"{method}__mappo__lbf__quick__{budget}"
        write_run(figure4, entries, run_id, method, LBF, [final] * 3, budget=budget)
    save_index(figure4, entries)

    ablations, entries = sweep_dir(root, "ablations")
    for method, finals in ABLATIONS.items():
        write_run(ablations, entries, f"{method}__mappo__lbf10__quick", method, LBF10, finals)
    save_index(ablations, entries)

    lone = root / "runs" / "mine"
    write_json(lone / "config.json", to_dict(tiny_config(lone)))
    write_jsonl(lone / "metrics.jsonl", metrics(LBF, [0.7, 0.7], "prism"))
    write_json(lone / "summary.json", summary(LBF, [0.7, 0.7]))
    return {"figure2": figure2, "figure4": figure4, "ablations": ablations, "lone": lone}
