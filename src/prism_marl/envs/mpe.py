"""jaxmarl's Multi-Agent Particle Environments under short ids: ``mpe:<task>``.

``mpe:simple_spread`` is jaxmarl's ``MPE_simple_spread_v3`` through the generic adapter
(``envs/jaxmarl_adapter.py``), with MPE's own episodes: 25 steps (PettingZoo's ``max_cycles``),
every one ended by a truncation. MPE's only end is its time limit, so jaxmarl's dones (which come
a step late, at ``max_steps`` + 1) are ignored and the adapter's step count ends episodes. A
``_discrete`` or ``_continuous`` suffix picks the action type where jaxmarl's default is the
other (``mpe:simple_spread_continuous``: 5 forces in [0, 1] per agent); the FACMAC tasks are
continuous only. MPE has no world state: the global state is every agent's observation
concatenated. On the competitive tasks (tag, adversary, push, crypto, world_comm) every agent,
adversaries included, is trained, and the team reward sums both sides' rewards.
"""

from __future__ import annotations

from prism_marl.envs.jaxmarl_adapter import JaxMARLEnv, make_jaxmarl_env
from prism_marl.errors import ConfigError

TASKS = {
    "simple": "MPE_simple_v3",
    "simple_spread": "MPE_simple_spread_v3",
    "simple_speaker_listener": "MPE_simple_speaker_listener_v4",
    "simple_reference": "MPE_simple_reference_v3",
    "simple_crypto": "MPE_simple_crypto_v3",
    "simple_push": "MPE_simple_push_v3",
    "simple_adversary": "MPE_simple_adversary_v3",
    "simple_tag": "MPE_simple_tag_v3",
    "simple_world_comm": "MPE_simple_world_comm_v3",
    "simple_facmac": "MPE_simple_facmac_v1",
    "simple_facmac_3a": "MPE_simple_facmac_3a_v1",
    "simple_facmac_6a": "MPE_simple_facmac_6a_v1",
    "simple_facmac_9a": "MPE_simple_facmac_9a_v1",
}
"""Short name -> jaxmarl's registered name."""
CONTINUOUS_BY_DEFAULT = frozenset(
    {
        "simple_world_comm",
        "simple_facmac",
        "simple_facmac_3a",
        "simple_facmac_6a",
        "simple_facmac_9a",
    }
)
CONTINUOUS_ONLY = frozenset(
    {"simple_facmac", "simple_facmac_3a", "simple_facmac_6a", "simple_facmac_9a"}
)
EPISODE_LIMIT = 25
"""MPE's episode length (PettingZoo's ``max_cycles``)."""


def parse_task(task: str) -> tuple[str, bool | None]:
    """``simple_spread_continuous`` -> (``simple_spread``, True); no suffix -> (task, None)."""
    for suffix, continuous in (("_continuous", True), ("_discrete", False)):
        if task.endswith(suffix) and task[: -len(suffix)] in TASKS:
            return task[: -len(suffix)], continuous
    return task, None


def make_mpe_env(task: str, *, episode_limit: int | None = None) -> JaxMARLEnv:
    """The adapter for ``mpe:<task>``.

    Args:
        task: A short MPE name (``TASKS``), optionally with ``_discrete`` or ``_continuous``.
        episode_limit: Steps per episode; None takes MPE's 25.

    Raises:
        ConfigError: Unknown task, or an action type the task does not have.
    """
    name, continuous = parse_task(task)
    if name not in TASKS:
        raise ConfigError(
            f"env: unknown MPE task {task!r}; valid: "
            + ", ".join(f"mpe:{t}" for t in TASKS)
            + " (a _discrete or _continuous suffix picks the action type)"
        )
    kwargs: dict[str, str] = {}
    if continuous is not None and continuous != (name in CONTINUOUS_BY_DEFAULT):
        if name in CONTINUOUS_ONLY:
            raise ConfigError(f"env: mpe:{name} has continuous actions only")
        kwargs["action_type"] = "Continuous" if continuous else "Discrete"
    return make_jaxmarl_env(
        TASKS[name],
        episode_limit=episode_limit or EPISODE_LIMIT,
        env_kwargs=kwargs,
        env_id=f"mpe:{task}",
        time_limit_only=True,
    )
