"""MaMuJoCo's robots as graphs of joints: agent partitions, observation layouts, v5 states.

Written from gymnasium-robotics 1.4.2's MaMuJoCo (``mamujoco_v1``, its ``obsk`` module), which
this package does not import. A robot is a graph whose nodes are actuated joints (``Joint``) and
whose hyperedges connect joints that see each other; an agent controls a tuple of joints and
observes, at graph distance k ≤ ``agent_obsk``, the categories ``local_categories[k]`` of every
joint there, then the categories ``("qpos", "qvel")`` of the robot's global nodes (its root).

Everything here is static: an observation is a list of ``Feature`` (which MuJoCo array, which
flat index, which clipping box), turned by ``envs/mamujoco.py`` into one gather and one clip.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple

SOURCES = ("qpos", "qvel", "cinert", "cvel", "qfrc_actuator", "cfrc_ext")
"""The MuJoCo arrays observations read, in the order of the flat vector they are gathered from."""
ROW_WIDTH = {"cinert": 10, "cvel": 6, "cfrc_ext": 6}
"""Per-body arrays: features per body (``data.cinert[body]`` has 10 numbers)."""
BODY_CATEGORIES = tuple(ROW_WIDTH)
INF = math.inf
FREE_QPOS, FREE_QVEL = (2, 3, 4, 5, 6), (0, 1, 2, 3, 4, 5)
"""A free root's observed entries: height and orientation, every velocity (MaMuJoCo's root)."""


class Feature(NamedTuple):
    """One observed number: ``clip(data.<source>.flat[at], low, high)``."""

    source: str
    at: int
    low: float = -INF
    high: float = INF


@dataclasses.dataclass(frozen=True, eq=False)
class Joint:
    """A node of a robot's graph: one actuated joint (or, with ``act`` None, a global node).

    ``qpos``/``qvel`` may count from the end (negative, as MaMuJoCo's tables do). ``bodies`` are
    the bodies whose rows of cinert, cvel and cfrc_ext the joint reports; ``body_clip`` clips
    those rows (the ant's ±1). ``qpos_override``/``qvel_override`` replace the joint's own entry
    by these indices (an empty tuple observes nothing: the root's x position); ``qvel_clip``
    clips its velocities (the hopper's ±10). Identity, not value, makes two joints equal.
    """

    label: str
    qpos: int | None
    qvel: int | None
    act: int | None
    bodies: tuple[int, ...] = ()
    body_clip: float | None = None
    qvel_clip: float | None = None
    qpos_override: tuple[int, ...] | None = None
    qvel_override: tuple[int, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Robot:
    """A Gymnasium v5 robot as MaMuJoCo factorises it, with v5's default reward arguments.

    Attributes:
        name: MaMuJoCo's scenario (``Ant``) and the task prefix (``ant``).
        xml: The model file under gymnasium's ``envs/mujoco/assets``.
        frame_skip: MuJoCo steps per environment step.
        edges: Hyperedges between joints.
        roots: The global nodes every agent observes.
        partitions: Agent configuration (``2x4``) -> the joints of each agent.
        local_categories: Categories observed at graph distance 0, 1, ... (the last repeats).
        reset_noise: v5's ``reset_noise_scale``; qvel noise is Gaussian where ``gaussian_qvel``.
        skipped_qpos: Leading qpos entries left out of v5's observation (the x, y position).
        state_velocity_clip: v5 clips qvel in its observation (hopper, walker2d).
    """

    name: str
    xml: str
    frame_skip: int
    edges: tuple[tuple[Joint, ...], ...]
    roots: tuple[Joint, ...]
    partitions: dict[str, tuple[tuple[Joint, ...], ...]]
    local_categories: tuple[tuple[str, ...], ...]
    reset_noise: float
    gaussian_qvel: bool
    skipped_qpos: int
    state_velocity_clip: float | None = None
    state_extras: tuple[tuple[str, float | None], ...] = ()
    """Per-body arrays appended to v5's observation without body 0 (world), with a clip."""


def _chain(*joints: Joint) -> tuple[tuple[Joint, ...], ...]:
    return tuple((a, b) for a, b in zip(joints, joints[1:], strict=False))


def _planar_roots(velocity_clip: float | None = None) -> tuple[Joint, ...]:
    """The slide-slide-hinge root of the planar robots: x hidden from qpos, as MaMuJoCo does."""
    return (
        Joint("root_x", 0, 0, None, qvel_clip=velocity_clip, qpos_override=()),
        Joint("root_z", 1, 1, None, qvel_clip=velocity_clip),
        Joint("root_y", 2, 2, None, qvel_clip=velocity_clip),
    )


def _half_cheetah() -> Robot:
    names = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
    bthigh, bshin, bfoot, fthigh, fshin, ffoot = (
        Joint(name, i - 6, i - 6, i) for i, name in enumerate(names)
    )
    return Robot(
        name="HalfCheetah",
        xml="half_cheetah.xml",
        frame_skip=5,
        edges=_chain(bfoot, bshin, bthigh, fthigh, fshin, ffoot),
        roots=_planar_roots(),
        partitions={
            "2x3": ((bthigh, bshin, bfoot), (fthigh, fshin, ffoot)),
            "6x1": ((bthigh,), (bshin,), (bfoot,), (fthigh,), (fshin,), (ffoot,)),
        },
        local_categories=(("qpos", "qvel"), ("qpos",)),
        reset_noise=0.1,
        gaussian_qvel=True,
        skipped_qpos=1,
    )


def _hopper() -> Robot:
    # MaMuJoCo clips every hopper velocity it observes to ±10, as v5's own observation does.
    thigh = Joint("thigh_joint", -3, -3, 0, qvel_clip=10.0)
    leg = Joint("leg_joint", -2, -2, 1, qvel_clip=10.0)
    foot = Joint("foot_joint", -1, -1, 2, qvel_clip=10.0)
    return Robot(
        name="Hopper",
        xml="hopper.xml",
        frame_skip=4,
        edges=_chain(foot, leg, thigh),
        roots=_planar_roots(velocity_clip=10.0),
        partitions={"3x1": ((thigh,), (leg,), (foot,))},
        local_categories=(("qpos", "qvel"), ("qpos",)),
        reset_noise=5e-3,
        gaussian_qvel=False,
        skipped_qpos=1,
        state_velocity_clip=10.0,
    )


def _walker2d() -> Robot:
    names = ("thigh", "leg", "foot", "thigh_left", "leg_left", "foot_left")
    thigh, leg, foot, thigh_l, leg_l, foot_l = (
        Joint(f"{name}_joint", i - 6, i - 6, i) for i, name in enumerate(names)
    )
    return Robot(
        name="Walker2d",
        xml="walker2d_v5.xml",
        frame_skip=4,
        edges=((foot, leg), (leg, thigh), (foot_l, leg_l), (leg_l, thigh_l), (thigh, thigh_l)),
        roots=_planar_roots(),  # MaMuJoCo does not clip these, although v5's state does
        partitions={"2x3": ((foot, leg, thigh), (foot_l, leg_l, thigh_l))},
        local_categories=(("qpos", "qvel"), ("qpos",)),
        reset_noise=5e-3,
        gaussian_qvel=False,
        skipped_qpos=1,
        state_velocity_clip=10.0,
    )


def _ant() -> Robot:
    # Bodies: 1 torso, then per leg (thigh, aux, ankle): 2-4, 5-7, 8-10, 11-13.
    def leg(n: int, q: int, act: int, first: int) -> tuple[Joint, Joint]:
        hip = Joint(f"hip{n}", q, q, act, bodies=(1, first), body_clip=1.0)
        bodies = (first, first + 1, first + 2)
        ankle = Joint(f"ankle{n}", q + 1, q + 1, act + 1, bodies=bodies, body_clip=1.0)
        return hip, ankle

    # Actuators in ant.xml run hip_4, ankle_4, hip_1, ..., ankle_3.
    hip1, ankle1 = leg(1, -8, 2, 2)
    hip2, ankle2 = leg(2, -6, 4, 5)
    hip3, ankle3 = leg(3, -4, 6, 8)
    hip4, ankle4 = leg(4, -2, 0, 11)
    root = Joint("root", 0, 0, None, qpos_override=FREE_QPOS, qvel_override=FREE_QVEL)
    return Robot(
        name="Ant",
        xml="ant.xml",
        frame_skip=5,
        edges=(
            (ankle4, hip4),
            (ankle1, hip1),
            (ankle2, hip2),
            (ankle3, hip3),
            (hip4, hip1, hip2, hip3),
        ),  # fmt: skip
        roots=(root,),
        partitions={
            "2x4": ((hip1, ankle1, hip2, ankle2), (hip3, ankle3, hip4, ankle4)),
            "2x4d": ((hip1, ankle1, hip4, ankle4), (hip2, ankle2, hip3, ankle3)),
            "4x2": ((hip1, ankle1), (hip2, ankle2), (hip3, ankle3), (hip4, ankle4)),
        },
        local_categories=(("qpos", "qvel", "cfrc_ext"), ("qpos",)),
        reset_noise=0.1,
        gaussian_qvel=True,
        skipped_qpos=2,
        state_extras=(("cfrc_ext", 1.0),),
    )


def _humanoid() -> Robot:
    # Bodies: 1 torso, 2 lwaist, 3 pelvis, 4-6 right thigh/shin/foot, 7-9 left, 10-11 right
    # upper/lower arm, 12-13 left.
    abdomen_y = Joint("abdomen_y", -17, -17, 0, bodies=(1, 2, 3))
    abdomen_z = Joint("abdomen_z", -16, -16, 1, bodies=(1, 2, 3))
    abdomen_x = Joint("abdomen_x", -15, -15, 2, bodies=(3, 4, 7))
    r_hip_x = Joint("right_hip_x", -14, -14, 3, bodies=(4, 5))
    r_hip_z = Joint("right_hip_z", -13, -13, 4, bodies=(4, 5))
    r_hip_y = Joint("right_hip_y", -12, -12, 5, bodies=(4, 5))
    r_knee = Joint("right_knee", -11, -11, 6, bodies=(5, 6))
    l_hip_x = Joint("left_hip_x", -10, -10, 7, bodies=(7, 8))
    l_hip_z = Joint("left_hip_z", -9, -9, 8, bodies=(7, 8))
    l_hip_y = Joint("left_hip_y", -8, -8, 9, bodies=(7, 8))
    l_knee = Joint("left_knee", -7, -7, 10, bodies=(8, 9))
    r_shoulder1 = Joint("right_shoulder1", -6, -6, 11, bodies=(1, 10, 11))
    r_shoulder2 = Joint("right_shoulder2", -5, -5, 12, bodies=(1, 10, 11))
    r_elbow = Joint("right_elbow", -4, -4, 13, bodies=(11,))
    l_shoulder1 = Joint("left_shoulder1", -3, -3, 14, bodies=(1, 12, 13))
    l_shoulder2 = Joint("left_shoulder2", -2, -2, 15, bodies=(1, 12, 13))
    l_elbow = Joint("left_elbow", -1, -1, 16, bodies=(13,))
    abdomen = (abdomen_x, abdomen_y, abdomen_z)
    r_hip, l_hip = (r_hip_x, r_hip_y, r_hip_z), (l_hip_x, l_hip_y, l_hip_z)
    root = Joint("root", None, None, None, qpos_override=FREE_QPOS, qvel_override=FREE_QVEL)
    return Robot(
        name="Humanoid",
        xml="humanoid.xml",
        frame_skip=5,
        edges=(
            abdomen,
            r_hip,
            l_hip,
            (l_elbow, l_shoulder1, l_shoulder2),
            (r_elbow, r_shoulder1, r_shoulder2),
            (l_knee, *l_hip),
            (r_knee, *r_hip),
            (l_shoulder1, l_shoulder2, *abdomen),
            (r_shoulder1, r_shoulder2, *abdomen),
            (*abdomen, *l_hip),
            (*abdomen, *r_hip),
        ),
        roots=(root,),
        partitions={
            "9|8": (
                (*abdomen, r_shoulder1, r_shoulder2, r_elbow, l_shoulder1, l_shoulder2, l_elbow),
                (*r_hip, r_knee, *l_hip, l_knee),
            )
        },
        local_categories=(
            ("qpos", "qvel", "cinert", "cvel", "qfrc_actuator", "cfrc_ext"),
            ("qpos",),
        ),
        reset_noise=1e-2,
        gaussian_qvel=False,
        skipped_qpos=2,
        state_extras=(
            ("cinert", None),
            ("cvel", None),
            ("qfrc_actuator", None),
            ("cfrc_ext", None),
        ),  # fmt: skip
    )


ROBOTS = {
    "ant": _ant(),
    "halfcheetah": _half_cheetah(),
    "hopper": _hopper(),
    "walker2d": _walker2d(),
    "humanoid": _humanoid(),
}
TASKS = tuple(f"{robot}_{conf}" for robot, spec in ROBOTS.items() for conf in spec.partitions)
"""Every task id after ``mamujoco:`` (``ant_2x4``, ``humanoid_9|8``, ...)."""


def parse_task(task: str) -> tuple[Robot, tuple[tuple[Joint, ...], ...]]:
    """The robot and agent partition of ``<robot>_<conf>``; KeyError when unknown."""
    robot, _, conf = task.partition("_")
    spec = ROBOTS[robot]
    return spec, spec.partitions[conf]


def joints_by_distance(
    own: Sequence[Joint], edges: Sequence[Sequence[Joint]], k: int
) -> list[list[Joint]]:
    """The joints at graph distance 0, 1, ..., k from ``own``, each level sorted by label.

    Distance grows through hyperedges: a joint sharing an edge with any joint of the previous
    level, and seen at no smaller distance, is at the next one (MaMuJoCo's ``k_dict``).
    """
    seen = set(own)
    frontier = set(own)
    levels = [sorted(frontier, key=lambda j: j.label)]
    for _ in range(k):
        reached: set[Joint] = set()
        for joint in frontier:
            for edge in edges:
                if joint in edge:
                    reached.update(edge)
        frontier = reached - seen
        seen |= frontier
        levels.append(sorted(frontier, key=lambda j: j.label))
    return levels


def _resolve(index: int, size: int) -> int:
    return index % size  # MaMuJoCo's tables count the joints from the end of qpos / qvel


class Sizes(NamedTuple):
    """The model sizes a layout needs to resolve its indices."""

    nq: int
    nv: int
    nbody: int


def _joint_features(joint: Joint, category: str, sizes: Sizes) -> list[Feature]:
    """A joint's qpos, qvel or qfrc_actuator entries (the body categories are handled apart)."""
    if category == "qpos":
        if joint.qpos_override is not None:
            return [Feature("qpos", i) for i in joint.qpos_override]
        assert joint.qpos is not None
        return [Feature("qpos", _resolve(joint.qpos, sizes.nq))]
    clip = joint.qvel_clip or INF
    if category == "qvel":
        if joint.qvel_override is not None:
            return [Feature("qvel", i, -clip, clip) for i in joint.qvel_override]
        assert joint.qvel is not None
        return [Feature("qvel", _resolve(joint.qvel, sizes.nv), -clip, clip)]
    if category == "qfrc_actuator":
        assert joint.qvel is not None
        return [Feature("qfrc_actuator", _resolve(joint.qvel, sizes.nv))]
    raise ValueError(f"no joint category {category!r}")


def _body_features(joint: Joint, category: str, reported: dict[str, set[int]]) -> list[Feature]:
    """Rows of a per-body array for the joint's bodies not reported yet in this part."""
    out = []
    clip = joint.body_clip or INF
    done = reported.setdefault(category, set())
    width = ROW_WIDTH[category]
    for body in joint.bodies:
        if body in done:
            continue
        done.add(body)
        out += [Feature(category, body * width + c, -clip, clip) for c in range(width)]
    return out


def agent_features(robot: Robot, own: Sequence[Joint], k: int, sizes: Sizes) -> list[Feature]:
    """One agent's observation as MaMuJoCo builds it (``agent_obsk`` = k).

    Local part: level by level, joint by joint (sorted by label), category by category; a body
    shared by two joints is reported once per category. Global part: for ``qpos`` then ``qvel``,
    each root node's entries.
    """
    levels = joints_by_distance(own, robot.edges, k)
    last = len(robot.local_categories) - 1
    categories = [robot.local_categories[min(d, last)] for d in range(k + 1)]
    features: list[Feature] = []
    reported: dict[str, set[int]] = {}
    for level, joints in enumerate(levels):
        for joint in joints:
            for category in categories[level]:
                if category in BODY_CATEGORIES:
                    features += _body_features(joint, category, reported)
                else:
                    features += _joint_features(joint, category, sizes)
    for category in ("qpos", "qvel"):
        for root in robot.roots:
            features += _joint_features(root, category, sizes)
    return features


def state_features(robot: Robot, sizes: Sizes) -> list[Feature]:
    """Gymnasium v5's single-agent observation, which MaMuJoCo's ``state()`` returns."""
    clip = robot.state_velocity_clip or INF
    features = [Feature("qpos", i) for i in range(robot.skipped_qpos, sizes.nq)]
    features += [Feature("qvel", i, -clip, clip) for i in range(sizes.nv)]
    for source, bound in robot.state_extras:
        if source == "qfrc_actuator":
            features += [Feature(source, i) for i in range(6, sizes.nv)]  # past the free joint
            continue
        width, b = ROW_WIDTH[source], bound or INF
        features += [Feature(source, i, -b, b) for i in range(width, sizes.nbody * width)]
    return features


def action_indices(part: Sequence[Joint]) -> list[int]:
    """The actuators an agent drives, in the order of its action vector."""
    return [j.act for j in part if j.act is not None]
