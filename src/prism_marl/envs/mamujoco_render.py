"""MaMuJoCo episodes as GIFs, drawn with Pillow from the simulated geometry (decision 0045).

MuJoCo's own ``Renderer`` needs an OpenGL context (EGL, OSMesa or a display), which a headless
CPU machine may not have; Gymnasium's ``rgb_array`` mode needs the same. So each frame is drawn
here, side on (x to the right, z up), from MJX's per-step geometry: every capsule as a thick
segment with round ends, every sphere as a disc, the floor as a line, coloured by the agent
whose joints move the geom (grey for the free torso). The view follows the torso.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FRAME_MILLISECONDS = 40
SIZE = (480, 320)
PIXELS_PER_METRE = 110.0
AGENT_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                 (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207)]  # fmt: skip
TORSO_COLOUR = (120, 120, 120)


def geom_agents(model: Any, actuator_agent: Sequence[int]) -> list[int]:
    """For each geom, the agent that drives its body's joint or the nearest ancestor's (-1: none).

    Args:
        model: The MuJoCo ``MjModel``.
        actuator_agent: For each actuator, the agent whose action it takes.
    """
    body_agent = {}
    for actuator, agent in enumerate(actuator_agent):
        joint = int(model.actuator_trnid[actuator, 0])
        body_agent[int(model.jnt_bodyid[joint])] = int(agent)
    out = []
    for geom in range(model.ngeom):
        body = int(model.geom_bodyid[geom])
        while body > 0 and body not in body_agent:
            body = int(model.body_parentid[body])
        out.append(body_agent.get(body, -1))
    return out


def draw_frame(model: Any, geom_xpos: np.ndarray, geom_xmat: np.ndarray, centre_x: float,
               colours: Sequence[tuple[int, int, int]]) -> Any:  # fmt: skip
    """One side-on picture (a Pillow image) of the geoms at these world poses."""
    import mujoco
    from PIL import Image, ImageDraw

    width, height = SIZE
    ground = height - 40
    image = Image.new("RGB", SIZE, (245, 245, 240))
    draw = ImageDraw.Draw(image)

    def pixel(x: float, z: float) -> tuple[float, float]:
        return (width / 2 + (x - centre_x) * PIXELS_PER_METRE, ground - z * PIXELS_PER_METRE)

    # Floor ticks every metre show the robot's motion while the view follows it.
    draw.line([(0, ground), (width, ground)], fill=(90, 90, 90), width=2)
    for metre in range(int(np.floor(centre_x - 3)), int(np.ceil(centre_x + 3)) + 1):
        x, _ = pixel(metre, 0.0)
        draw.line([(x, ground), (x - 8, ground + 10)], fill=(150, 150, 150), width=1)
    order = np.argsort(geom_xpos[:, 1])[::-1]  # far side (larger y) first
    for geom in order:
        kind = model.geom_type[geom]
        if kind == mujoco.mjtGeom.mjGEOM_PLANE:
            continue
        radius = float(model.geom_size[geom, 0]) * PIXELS_PER_METRE
        centre = geom_xpos[geom]
        colour = tuple(colours[geom])
        if kind == mujoco.mjtGeom.mjGEOM_CAPSULE or kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
            axis = geom_xmat[geom].reshape(3, 3)[:, 2] * float(model.geom_size[geom, 1])
            a, b = pixel(*(centre - axis)[[0, 2]]), pixel(*(centre + axis)[[0, 2]])
            draw.line([a, b], fill=colour, width=max(1, int(2 * radius)))
            for x, y in (a, b):
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
        else:  # spheres, and a disc of the first size for anything else
            x, y = pixel(centre[0], centre[2])
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    return image


def save_episode(
    model: Any, poses: Sequence[Any], path: str, actuator_agent: Sequence[int] | None = None
) -> None:
    """Write the episode's poses (qpos before each step) to a GIF at ``path``.

    The geometry comes from MuJoCo C's kinematics of each pose: no compile, and the same
    positions MJX computes.
    """
    import mujoco

    agents = geom_agents(model, actuator_agent if actuator_agent is not None else [0] * model.nu)
    colours = [AGENT_COLOURS[a % len(AGENT_COLOURS)] if a >= 0 else TORSO_COLOUR for a in agents]
    data = mujoco.MjData(model)
    images = []
    for qpos in poses:
        data.qpos[:] = np.asarray(qpos, np.float64)
        mujoco.mj_kinematics(model, data)
        xmat = data.geom_xmat.reshape(model.ngeom, 9)
        images.append(draw_frame(model, data.geom_xpos, xmat, float(data.xpos[1, 0]), colours))
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=FRAME_MILLISECONDS, loop=0
    )
