"""The run configuration tree and its type-tagged JSON form.

Every union member (the sharing strategy, the algorithm's hyper-parameters) is written with a
``"type"`` tag so that ``config.json`` rebuilds the exact run.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from prism_marl.algos import ALGORITHMS
from prism_marl.envs.registry import require_known_env
from prism_marl.errors import ConfigError, require
from prism_marl.sharing import STRATEGIES, Prism, SharingStrategy
from prism_marl.sharing.base import preparation_steps


def algo_config_type(algo: str) -> type:
    """The hyper-parameter dataclass of algorithm ``algo``; a ``ConfigError`` if unknown.

    Read from ``algos.ALGORITHMS``, the one registry, so an entry added there is seen here.
    """
    require(
        algo in ALGORITHMS, "algo", f"unknown algorithm {algo!r}; valid: {', '.join(ALGORITHMS)}"
    )
    return ALGORITHMS[algo][0]


def default_algo_config(algo: str) -> Any:
    """The default hyper-parameters of algorithm ``algo``."""
    return algo_config_type(algo)()


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Which environment, and its switches."""

    id: str = "lbf:8x8-2p-2f-coop"
    """Environment id, family:task, e.g. lbf:8x8-2p-2f-coop, smax:3m, mabrax:hopper_3x1,
    mpe:simple_spread, jaxmarl:MPE_simple_spread_v3, or a family added with register_env."""
    episode_limit: int | None = None
    """Steps before a time-limit truncation; None takes the benchmark's (LBF 50, MPE 25)."""
    lbf_rules: str = "lbforaging"
    """LBF rules: lbforaging (the benchmark's game, as lbforaging 2.0.0 plays it) or jumanji."""
    lbf_generator: str = "uniform"
    """LBF start states, jumanji rules only: uniform (agents on any free cell) or jumanji."""
    lbf_penalty: float = 0.0
    """LBF (lbforaging rules): reward subtracted from each agent of a failed loading group."""
    lbf_fix_quirks: bool = False
    """LBF (lbforaging rules): fix its chain-collision and edge-widened sight quirks."""
    agent_obsk: int = 1
    """MaMuJoCo (mamujoco: tasks only): graph distance up to which an agent observes other
    agents' joints, gymnasium-robotics' agent_obsk (0: own joints only; default 1)."""

    def __post_init__(self) -> None:
        require_known_env(self.id)
        require(
            self.episode_limit is None or self.episode_limit >= 1,
            "env.episode-limit",
            "must be >= 1",
        )
        require(
            self.lbf_rules in ("lbforaging", "jumanji"),
            "env.lbf-rules",
            f"must be one of lbforaging, jumanji; got {self.lbf_rules!r}",
        )
        require(self.lbf_penalty >= 0, "env.lbf-penalty", f"must be >= 0; got {self.lbf_penalty}")
        require(
            self.lbf_generator in ("uniform", "jumanji"),
            "env.lbf-generator",
            f"must be one of uniform, jumanji; got {self.lbf_generator!r}",
        )
        require(self.agent_obsk >= 0, "env.agent-obsk", f"must be >= 0; got {self.agent_obsk}")
        require(
            self.agent_obsk == 1 or self.id.startswith("mamujoco:"),
            "env.agent-obsk",
            f"only mamujoco: tasks take it; {self.id} does not",
        )


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One training run: algorithm, sharing strategy, environment and the run's bookkeeping."""

    algo: str = "mappo"
    """Algorithm: mappo, ippo, qmix, vdn or matd3."""
    sharing: SharingStrategy = Prism()
    """Parameter-sharing strategy."""
    env: EnvConfig = EnvConfig()
    """Environment."""
    algo_config: Any = None
    """The algorithm's hyper-parameters (flags --algo.*); None takes the algorithm's defaults."""
    num_seeds: int = 3
    """Seeds trained side by side (vmapped)."""
    total_steps: int = 1_000_000
    """Environment steps per seed."""
    eval_interval: int = 100_000
    """Environment steps per seed between evaluations, logs and checkpoints."""
    eval_episodes: int = 32
    """Evaluation episodes per seed at each evaluation, played as eval_greedy says."""
    final_eval_episodes: int = 320
    """Evaluation episodes per seed for the final (absolute) evaluation."""
    diversity_episodes: int = 8
    """Greedy episodes per seed over which each evaluation measures SND, the agents' behavioural
    diversity (``rl/diversity.py``; logged as eval/snd where agents share an observation
    layout); 0 turns it off."""
    eval_greedy: bool | None = None
    """True: evaluate the greedy policy (argmax / mean); False: sample actions as in training;
    None: the algorithm's test policy, sampled for stochastic policies (MAPPO, IPPO) and
    greedy for QMIX, VDN and MATD3 (docs/decisions/0021-evaluation-mode.md)."""
    seed: int = 0
    """Base random seed; seed i of the run uses fold_in(seed, i)."""
    run_dir: str = "runs/default"
    """Where results and checkpoints go."""

    def __post_init__(self) -> None:
        require(
            self.algo in ALGORITHMS,
            "algo",
            f"unknown algorithm {self.algo!r}; valid: {', '.join(ALGORITHMS)}",
        )
        expected = ALGORITHMS[self.algo][0]
        if self.algo_config is None:
            object.__setattr__(self, "algo_config", expected())
        require(
            isinstance(self.algo_config, expected),
            "algo",
            f"{self.algo} takes {expected.__name__} hyper-parameters, "
            f"got {type(self.algo_config).__name__}",
        )
        require(self.num_seeds >= 1, "num-seeds", "must be >= 1")
        require(self.total_steps >= 1, "total-steps", "must be >= 1")
        require(self.eval_interval >= 1, "eval-interval", "must be >= 1")
        require(self.eval_episodes >= 1, "eval-episodes", "must be >= 1")
        require(self.final_eval_episodes >= 1, "final-eval-episodes", "must be >= 1")
        require(self.diversity_episodes >= 0, "diversity-episodes", "must be >= 0")
        # A preparation step past the run's end would leave the strategy unprepared (SePS: one
        # cluster, FuPS in disguise) without a word.
        steps = preparation_steps(self.sharing)
        require(
            steps < self.total_steps,
            "sharing.pretrain-steps",
            f"must be below total-steps ({self.total_steps}); got {steps}",
        )


def to_dict(value: Any) -> Any:
    """A dataclass tree as JSON-ready data, tagging every strategy with its ``type``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, SharingStrategy):
            return {"type": value.name, **data}
        if type(value) in (entry[0] for entry in ALGORITHMS.values()):
            return {"type": type(value).__name__, **data}
        return data
    if isinstance(value, tuple):
        return [to_dict(v) for v in value]
    return value


def _coerce(field_type: Any, value: Any) -> Any:
    """Lists back to tuples where the field is a tuple."""
    if value is None:
        return None
    origin = typing.get_origin(field_type)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(field_type):
            if arg is not type(None):
                return _coerce(arg, value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def build_dataclass(cls: type, data: dict[str, Any]) -> Any:
    """Instantiate ``cls`` from a dict, converting lists to tuples for tuple fields."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known - {"type"}
    if unknown:
        valid = ", ".join(sorted(known))
        raise ConfigError(
            f"config: unknown field(s) {sorted(unknown)} for {cls.__name__}; valid: {valid}"
        )
    return cls(**{k: _coerce(hints[k], v) for k, v in data.items() if k != "type"})


# Fields whose default changed: a config.json written before the field existed ran the old
# behaviour (Prism: decision 0034; Kaleidoscope: decision 0035).
_SHARING_BEFORE: dict[str, dict[str, Any]] = {
    "prism": {"scaled_spectrum": False},
    "kaleidoscope": {"relative_thresholds": False, "reset_first_layer": True},
}


def from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict``'s output (config.json)."""
    missing = [k for k in ("algo", "sharing", "env", "algo_config") if k not in data]
    if missing or not isinstance(data.get("sharing"), dict):
        raise ConfigError(f"config: not a prism-marl run config (missing {missing or 'sharing'})")
    sharing = data["sharing"]
    if sharing.get("type") not in STRATEGIES:
        raise ConfigError(f"config: unknown sharing type {sharing.get('type')!r}")
    if data.get("algo") not in ALGORITHMS:
        raise ConfigError(f"config: unknown algorithm {data.get('algo')!r}")
    return RunConfig(
        algo=data["algo"],
        sharing=build_dataclass(
            STRATEGIES[sharing["type"]], {**_SHARING_BEFORE.get(sharing["type"], {}), **sharing}
        ),
        # config.json files written before env.lbf_rules existed ran jumanji's LBF.
        env=build_dataclass(EnvConfig, {"lbf_rules": "jumanji", **data["env"]}),
        algo_config=build_dataclass(ALGORITHMS[data["algo"]][0], data["algo_config"]),
        **{k: v for k, v in data.items() if k not in ("algo", "sharing", "env", "algo_config")},
    )
