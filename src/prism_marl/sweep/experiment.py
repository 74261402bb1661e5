"""Experiment files: a TOML description of a figure's runs, checked and expanded into runs.

A file lists methods (a strategy and its fields), tasks, backbones (an algorithm and a preset
per environment family) and, per scale (``quick``, ``full``), seeds and budgets::

    name = "figure2"
    description = "..."
    tasks = ["lbf:8x8-2p-2f-coop", "smax:smacv2_5_units"]
    budgets = ["full", "half"]               # optional: Figure 4's parameter budgets

    [[backbones]]
    name = "qmix"
    algo = "qmix"
    presets = { lbf = "qmix-lbf", smax = "qmix-smacv2" }
    algo_fields = { lr = 5e-4 }              # optional, over the preset's

    [[methods]]
    name = "prism-r1/2"
    sharing = "prism"
    fields = { lambda_div = 0.0 }            # optional strategy fields
    rank_fraction = 0.5                      # optional: Prism's rank as a fraction of the width

    [scales.quick]
    seeds = 3
    steps = { lbf = 200_000, smax = 300_000 }  # environment steps per seed, per family
    evaluations = 10                         # optional: evaluation points (default 10)
    tasks = ["lbf:8x8-2p-2f-coop"]           # optional subsets of the file's lists
    backbones = ["mappo"]
    methods = ["prism", "fups"]
    run = { eval_episodes = 32 }             # optional RunConfig fields
    method_fields = { seps = { pretrain_steps = 50_000 } }  # optional, per method name
    backbone_tasks = { qmix = ["smax:smacv2_5_units"] }      # optional: a backbone's subset
    task_methods = { "lbf:8x8-2p-2f-coop" = ["prism"] }      # optional: a task's methods
    task_run = { "lbf:8x8-2p-2f-coop" = { eval_episodes = 8 } }  # optional: over run
    backbone_steps = { matd3 = { mabrax = 100_000 } }        # optional: a backbone's budgets
    backbone_method_fields = { matd3 = { seps = { pretrain_steps = 5_000 } } }  # over those
    backbone_method_algo_fields = { mappo = { prism = { lr = 1e-3 } } }  # one method's algo
    backbone_method_algo_factors = { mappo = { prism = { lr = 2.0 } } }  # x the value so far

    [scales.confirm]                         # the protocol's confirmation (docs/experiments/)
    extends = "quick"                        # quick's keys, then these (tables merged a level)
    run = { seed = 100 }                     # fresh seeds

The scales are ``quick``, ``full``, and the fair protocol's ``confirm`` (quick's runs on fresh
seeds, every method at the preset setting) and ``confirm-tuned`` (the same, each method at the
setting the tuning selected, as factors on the preset's values).

Every run gets one RunConfig built through ``presets.build_run_config``, the path
``prism-marl train`` takes, so an entry means what the same flags mean. Everything (keys,
names, fields, environments) is checked while expanding, before any run starts; a mistake is a
``ConfigError`` naming the file, the key and the valid values.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Any

from prism_marl.algos import ALGORITHMS
from prism_marl.config import EnvConfig, RunConfig, to_dict
from prism_marl.envs import registered_envs
from prism_marl.errors import ConfigError
from prism_marl.presets import PRESETS, build_run_config
from prism_marl.sharing import STRATEGIES

SCALES = ("quick", "full", "confirm", "confirm-tuned")
TOP_KEYS = ("name", "description", "tasks", "budgets", "backbones", "methods", "scales")
BACKBONE_KEYS = ("name", "algo", "presets", "algo_fields")
METHOD_KEYS = ("name", "sharing", "fields", "rank_fraction")
SCALE_KEYS = (
    "seeds",
    "steps",
    "evaluations",
    "tasks",
    "backbones",
    "methods",
    "run",
    "method_fields",
    "backbone_tasks",
    "task_methods",
    "task_run",
    "backbone_steps",
    "backbone_method_fields",
    "backbone_method_algo_fields",
    "backbone_method_algo_factors",
    "extends",
)
BUDGETS = ("full", "half")


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its id, full config and where it comes from in the file."""

    run_id: str
    """``method__backbone__task__scale[__budget]__hash``: the run directory's name."""
    config_hash: str
    """Hash of the full config (everything but the run directory)."""
    config: RunConfig
    method: str
    backbone: str
    task: str
    scale: str
    budget: str | None = None
    width: int | None = None
    """Hidden width from the width solver (budget runs only)."""

    def record(self) -> dict[str, Any]:
        """What the sweep index says about where the run comes from."""
        return {
            "method": self.method,
            "backbone": self.backbone,
            "task": self.task,
            "scale": self.scale,
            "budget": self.budget,
            "width": self.width,
            "algo": self.config.algo,
            "sharing": self.config.sharing.name,
            "num_seeds": self.config.num_seeds,
            "total_steps": self.config.total_steps,
        }


# Fields added after run ids were first published, with the value every earlier run had: at
# that value a field is left out of the hash, so adding it renames no finished run
# (docs/decisions/0054). A field set to anything else is hashed as usual.
LATER_FIELDS: dict[str, dict[str, Any]] = {
    "sharing": {"regularise": "loss", "scaled_directions": False}
}


def config_hash(config: RunConfig) -> str:
    """12 hex digits of SHA-256 over the config's JSON form, run directory excluded.

    Fields of ``LATER_FIELDS`` at their recorded value are left out.
    """
    data = to_dict(config)
    data.pop("run_dir", None)
    for section, fields in LATER_FIELDS.items():
        table = data.get(section, {})
        for name, value in fields.items():
            if name in table and table[name] == value:
                del table[name]
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-." else "-" for c in text)
    return keep.strip("-")


class _Checker:
    """Raises ConfigError prefixed with the file's name."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {message}")

    def keys(self, table: Any, valid: tuple[str, ...], where: str, required=()) -> None:
        if not isinstance(table, dict):
            raise self.fail(where, "must be a table")
        for key in table:
            if key not in valid:
                raise self.fail(f"{where}.{key}", f"unknown key; valid: {', '.join(valid)}")
        for key in required:
            if key not in table:
                raise self.fail(f"{where}.{key}", "is required")

    def names(self, values: Any, valid: tuple[str, ...] | list[str], where: str) -> list[str]:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.fail(where, "must be a list of names")
        for value in values:
            if value not in valid:
                raise self.fail(where, f"unknown name {value!r}; valid: {', '.join(valid)}")
        return values


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A checked experiment file."""

    path: str
    name: str
    description: str
    tasks: tuple[str, ...]
    budgets: tuple[str, ...]
    backbones: tuple[dict[str, Any], ...]
    methods: tuple[dict[str, Any], ...]
    scales: dict[str, dict[str, Any]]

    def runs(self, scale: str) -> list[PlannedRun]:
        """Every run of ``scale``, each with its RunConfig (run_dir relative to the results).

        Builds and checks every config of the scale (strategy fields, presets, tasks, widths
        for budgets): a mistake raises ``ConfigError`` before any run starts.
        """
        check = _Checker(self.path)
        if scale not in self.scales:
            raise check.fail("scales", f"no [scales.{scale}]; valid: {', '.join(self.scales)}")
        table = self.scales[scale]
        tasks = table.get("tasks", list(self.tasks))
        backbones = [b for b in self.backbones if b["name"] in table.get("backbones", [b["name"]])]
        methods = [m for m in self.methods if m["name"] in table.get("methods", [m["name"]])]
        planned = []
        for backbone in backbones:
            for task in table.get("backbone_tasks", {}).get(backbone["name"], tasks):
                family = task.split(":", 1)[0]
                if family not in backbone["presets"]:
                    continue
                if family not in _budgets(table, backbone["name"]):
                    raise check.fail(
                        f"scales.{scale}.steps", f"no budget for family {family!r} ({task})"
                    )
                try:
                    _env_spec(EnvConfig(id=task))  # an unknown task fails before any run
                except ConfigError as error:
                    raise check.fail("tasks", str(error)) from None
                names = table.get("task_methods", {}).get(task, [m["name"] for m in methods])
                for method in (m for m in methods if m["name"] in names):
                    for budget in self.budgets or (None,):
                        planned.append(self._run(check, scale, backbone, task, method, budget))
        return planned

    def _run(self, check, scale, backbone, task, method, budget) -> PlannedRun:
        table = self.scales[scale]
        family = task.split(":", 1)[0]
        steps = int(_budgets(table, backbone["name"])[family])
        evaluations = int(table.get("evaluations", 10))
        run_fields = {
            "num_seeds": int(table["seeds"]),
            "total_steps": steps,
            "eval_interval": max(1, math.ceil(steps / evaluations)),
            **table.get("run", {}),
            **table.get("task_run", {}).get(task, {}),
            "run_dir": "",
        }
        where = f"methods.{method['name']} on {task} with {backbone['name']}"
        try:
            config = build_run_config(
                sharing=method["sharing"],
                sharing_fields={
                    **method.get("fields", {}),
                    **table.get("method_fields", {}).get(method["name"], {}),
                    **table.get("backbone_method_fields", {})
                    .get(backbone["name"], {})
                    .get(method["name"], {}),
                },
                algo=backbone["algo"],
                preset=backbone["presets"][family],
                run_fields=run_fields,
                env_fields={"id": task},
                algo_fields={
                    **backbone.get("algo_fields", {}),
                    **table.get("backbone_method_algo_fields", {})
                    .get(backbone["name"], {})
                    .get(method["name"], {}),
                },
            )
            factors = (
                table.get("backbone_method_algo_factors", {})
                .get(backbone["name"], {})
                .get(method["name"], {})
            )
            if factors:
                config = _with_algo_factors(config, factors)
            width = None
            if budget is not None:
                config, width = _with_budget(config, budget)
            if "rank_fraction" in method:
                config = _with_rank_fraction(config, float(method["rank_fraction"]))
        except ConfigError as error:
            raise check.fail(where, str(error)) from None
        digest = config_hash(config)
        parts = [method["name"], backbone["name"], task, scale, *([budget] if budget else [])]
        run_id = "__".join(_slug(p) for p in parts) + f"__{digest[:8]}"
        return PlannedRun(
            run_id=run_id,
            config_hash=digest,
            config=dataclasses.replace(config, run_dir=run_id),
            method=method["name"],
            backbone=backbone["name"],
            task=task,
            scale=scale,
            budget=budget,
            width=width,
        )


def _with_algo_factors(config: RunConfig, factors: dict[str, Any]) -> RunConfig:
    """The config with float algorithm fields multiplied: a setting relative to the preset's.

    The tuning protocol's settings are steps around each preset (lr x 2), and presets differ
    per family (MAPPO's lr: 5e-4 on LBF and SMAX, 3e-4 on MaBrax).
    """
    algo = config.algo_config
    valid = [f.name for f in dataclasses.fields(algo) if isinstance(getattr(algo, f.name), float)]
    unknown = sorted(set(factors) - set(valid))
    if unknown:
        raise ConfigError(
            f"algo factors: unknown or not float field(s) {unknown}; valid: {', '.join(valid)}"
        )
    changes = {name: getattr(algo, name) * float(factor) for name, factor in factors.items()}
    return dataclasses.replace(config, algo_config=dataclasses.replace(algo, **changes))


def _budgets(table: dict[str, Any], backbone: str) -> dict[str, Any]:
    """Environment steps per family for ``backbone`` at a scale: ``steps`` and its overrides."""
    return {**table["steps"], **table.get("backbone_steps", {}).get(backbone, {})}


def hidden_width(config: RunConfig) -> int:
    """The agent network's hidden width (the first hidden layer's, or QMIX's GRU width)."""
    algo = config.algo_config
    if hasattr(algo, "hidden_size"):
        return int(algo.hidden_size)
    return int(algo.hidden_sizes[0])


def _with_width(config: RunConfig, width: int) -> RunConfig:
    algo = config.algo_config
    if hasattr(algo, "hidden_size"):
        algo = dataclasses.replace(algo, hidden_size=width)
    else:
        algo = dataclasses.replace(algo, hidden_sizes=(width,) * len(algo.hidden_sizes))
    return dataclasses.replace(config, algo_config=algo)


def _with_rank_fraction(config: RunConfig, fraction: float) -> RunConfig:
    if not 0 < fraction <= 1:
        raise ConfigError(f"rank_fraction: must be in (0, 1], got {fraction}")
    if "rank" not in {f.name for f in dataclasses.fields(config.sharing)}:
        raise ConfigError(f"rank_fraction: strategy {config.sharing.name} has no rank")
    rank = max(1, round(hidden_width(config) * fraction))
    sharing = dataclasses.replace(config.sharing, rank=rank)  # type: ignore[call-arg]
    return dataclasses.replace(config, sharing=sharing)


@functools.cache
def _env_spec(env: EnvConfig) -> Any:
    from prism_marl.envs import make_env

    return make_env(env).spec


def network_shape(config: RunConfig) -> Any:
    """The agent network the budget counts (actor or Q-network), as ``resources`` counts it."""
    from prism_marl.resources import NetworkShape

    spec = _env_spec(config.env)
    algo = config.algo_config
    if hasattr(algo, "hidden_size"):  # QMIX/VDN: dense -> GRU -> Q-values
        return NetworkShape(spec.obs_size, (algo.hidden_size,) * 2, spec.num_actions, True)
    recurrent = bool(getattr(algo, "recurrent", False))
    return NetworkShape(spec.obs_size, tuple(algo.hidden_sizes), spec.num_actions, recurrent)


def _with_budget(config: RunConfig, budget: str) -> tuple[RunConfig, int]:
    """The config at the hidden width whose agent network matches ``budget``.

    ``full`` is NoPS's parameter count at the backbone's width, ``half`` half of it; critics
    and mixers keep their sizes.
    """
    from prism_marl.resources import budget_target, solve_width

    shape = network_shape(config)
    num_agents = _env_spec(config.env).num_agents
    target = budget_target(budget, shape, num_agents)
    width, _ = solve_width(config.sharing, shape, num_agents, target)
    return _with_width(config, width), width


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment file and check its keys and names (see the module docstring).

    Values (strategy fields, tasks, budgets) are checked by ``Experiment.runs``, per scale.
    """
    path = Path(path)
    check = _Checker(str(path))
    try:
        data = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    check.keys(data, TOP_KEYS, "file", required=("name", "tasks", "backbones", "methods", "scales"))
    for task in data["tasks"]:
        try:
            EnvConfig(id=task)
        except ConfigError as error:
            raise check.fail("tasks", str(error)) from None
    budgets = check.names(data.get("budgets", []), BUDGETS, "budgets")
    backbones = data["backbones"]
    if not isinstance(backbones, list) or not backbones:
        raise check.fail("backbones", "must be a non-empty array of tables [[backbones]]")
    for index, backbone in enumerate(backbones):
        where = f"backbones[{index}]"
        check.keys(backbone, BACKBONE_KEYS, where, required=("name", "algo", "presets"))
        check.names([backbone["algo"]], list(ALGORITHMS), f"{where}.algo")
        check.keys(backbone["presets"], registered_envs(), f"{where}.presets")
        check.names(list(backbone["presets"].values()), list(PRESETS), f"{where}.presets")
    methods = data["methods"]
    if not isinstance(methods, list) or not methods:
        raise check.fail("methods", "must be a non-empty array of tables [[methods]]")
    for index, method in enumerate(methods):
        where = f"methods[{index}]"
        check.keys(method, METHOD_KEYS, where, required=("name", "sharing"))
        check.names([method["sharing"]], list(STRATEGIES), f"{where}.sharing")
    for kind, entries in (("backbones", backbones), ("methods", methods)):
        names = [e["name"] for e in entries]
        if len(set(names)) != len(names):
            raise check.fail(kind, f"names must be unique, got {names}")
    check.keys(data["scales"], SCALES, "scales")
    scales = {name: _extended(check, data["scales"], name) for name in data["scales"]}
    for scale, table in scales.items():
        where = f"scales.{scale}"
        check.keys(table, SCALE_KEYS, where, required=("seeds", "steps"))
        check.keys(table["steps"], registered_envs(), f"{where}.steps")
        check.names(table.get("tasks", []), data["tasks"], f"{where}.tasks")
        check.names(
            table.get("backbones", []), [b["name"] for b in backbones], f"{where}.backbones"
        )
        method_names = [m["name"] for m in methods]
        check.names(table.get("methods", []), method_names, f"{where}.methods")
        check.names(list(table.get("method_fields", {})), method_names, f"{where}.method_fields")
        backbone_names = tuple(b["name"] for b in backbones)
        scale_tasks = table.get("tasks", data["tasks"])
        check.keys(table.get("backbone_tasks", {}), backbone_names, f"{where}.backbone_tasks")
        for name, subset in table.get("backbone_tasks", {}).items():
            check.names(subset, scale_tasks, f"{where}.backbone_tasks.{name}")
        for key in ("task_methods", "task_run"):
            check.keys(table.get(key, {}), tuple(scale_tasks), f"{where}.{key}")
        scale_methods = table.get("methods", method_names)
        for task, subset in table.get("task_methods", {}).items():
            check.names(subset, scale_methods, f"{where}.task_methods.{task}")
        for task, fields in table.get("task_run", {}).items():
            if not isinstance(fields, dict):
                raise check.fail(f"{where}.task_run.{task}", "must be a table of run fields")
        check.keys(table.get("backbone_steps", {}), backbone_names, f"{where}.backbone_steps")
        for name, family_steps in table.get("backbone_steps", {}).items():
            check.keys(family_steps, registered_envs(), f"{where}.backbone_steps.{name}")
        for key in (
            "backbone_method_fields",
            "backbone_method_algo_fields",
            "backbone_method_algo_factors",
        ):
            fields = table.get(key, {})
            check.keys(fields, backbone_names, f"{where}.{key}")
            for name, per_method in fields.items():
                check.keys(per_method, tuple(method_names), f"{where}.{key}.{name}")
    experiment = Experiment(
        path=str(path),
        name=str(data["name"]),
        description=str(data.get("description", "")),
        tasks=tuple(data["tasks"]),
        budgets=tuple(budgets),
        backbones=tuple(backbones),
        methods=tuple(methods),
        scales=scales,
    )
    return experiment


def _extended(check: _Checker, scales: dict[str, Any], name: str) -> dict[str, Any]:
    """Scale ``name``'s table with ``extends`` resolved: the parent's keys, then its own.

    Table values (``run``, ``steps``, ``method_fields``, ...) merge one level deep, so that
    ``run = { seed = 100 }`` keeps the parent's other run fields.
    """
    chain = [name]
    while "extends" in scales[chain[-1]]:
        parent = scales[chain[-1]]["extends"]
        where = f"scales.{chain[-1]}.extends"
        if parent not in scales:
            raise check.fail(where, f"no [scales.{parent}]; valid: {', '.join(scales)}")
        if parent in chain:
            raise check.fail(where, f"extends itself through {' -> '.join([*chain, parent])}")
        chain.append(parent)
    merged: dict[str, Any] = {}
    for table in (scales[link] for link in reversed(chain)):
        for key, value in table.items():
            if key == "extends":
                continue
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


__all__ = ["SCALES", "Experiment", "PlannedRun", "config_hash", "load_experiment"]
