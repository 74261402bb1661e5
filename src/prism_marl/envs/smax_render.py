"""SMAX battles as GIFs, drawn on the host from jaxmarl's world ticks.

jaxmarl's own ``SMAXVisualizer`` draws each tick with un-jitted JAX calls, one of them a
``lax.cond`` on fresh lambdas that compiles anew at every call: about 2.7 s per tick here, so
one 24-step episode of smacv2_10_units took 11 minutes to render. This module keeps jaxmarl's
replay of the world ticks (``expand_state_seq``, jitted) and its picture (allies blue, enemies
green, a lighter shade while being shot, the unit type's letter, a grey square for each shot
in flight) and draws from NumPy copies of the states, about 0.15 s a tick on 2 cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

FRAME_MILLISECONDS = 64
"""Display time of one world tick (jaxmarl's visualiser interval)."""


class Tick(NamedTuple):
    """One world tick on the host: every unit's position [U, 2], alive [U], type [U].

    ``attacks`` [U] are the actions of the environment step the tick belongs to,
    ``env_step`` its index and ``fraction`` how far through the step the tick is (0 to 1).
    """

    positions: np.ndarray
    alive: np.ndarray
    types: np.ndarray
    attacks: np.ndarray
    env_step: int
    fraction: float


def expand_ticks(env: Any, sequence: Sequence[tuple[Any, Any, dict[str, Any]]]) -> list[Tick]:
    """Every world tick of an episode, replayed by jaxmarl's ``expand_state_seq``.

    Args:
        env: jaxmarl's ``HeuristicEnemySMAX`` (any ``EnemySMAX``).
        sequence: (key passed to ``step``, state before it, {ally: action}) per step.

    Returns:
        For each step, its starting state then each of its ``world_steps_per_env_step`` ticks.
    """
    expanded = env.expand_state_seq(list(sequence))
    per_step = env.world_steps_per_env_step + 1
    agents = list(env.all_agents)
    ticks = []
    for index, (_, state, actions) in enumerate(expanded):
        within = index % per_step
        ticks.append(
            Tick(
                positions=np.asarray(state.unit_positions, dtype=np.float64),
                alive=np.asarray(state.unit_alive, dtype=bool),
                types=np.asarray(state.unit_types, dtype=np.int64),
                attacks=np.array([int(actions[a]) for a in agents], dtype=np.int64),
                env_step=index // per_step,
                fraction=within / env.world_steps_per_env_step,
            )
        )
    return ticks


def shots(env: Any, tick: Tick) -> list[tuple[int, int]]:
    """(shooter, target) unit pairs whose attack lands in this tick (jaxmarl's rule).

    An action a ≥ M (M movement actions) attacks: ally i targets enemy unit A + a − M, enemy
    unit j targets ally A − 1 − (a − M), A allies; the shot counts when both are alive and the
    distance is below the shooter type's attack range.
    """
    allies, moves = env.num_allies, env.num_movement_actions
    ranges = np.asarray(env.unit_type_attack_ranges)
    pairs = []
    for shooter, action in enumerate(tick.attacks):
        if action < moves:
            continue
        target = allies + action - moves if shooter < allies else allies - 1 - (action - moves)
        if not 0 <= target < len(tick.alive) or not (tick.alive[shooter] and tick.alive[target]):
            continue
        distance = np.linalg.norm(tick.positions[shooter] - tick.positions[target])
        if distance < ranges[tick.types[shooter]]:
            pairs.append((shooter, int(target)))
    return pairs


def draw_tick(ax: Any, env: Any, tick: Tick) -> None:
    """Draw one tick on a matplotlib axis (cleared first)."""
    from matplotlib.patches import Circle, Rectangle

    radii = np.asarray(env.unit_type_radiuses)
    letters = env.unit_type_shorthands
    pairs = shots(env, tick)
    shot = {target for _, target in pairs}
    ax.clear()
    ax.set_xlim(0.0, float(env.map_width))
    ax.set_ylim(0.0, float(env.map_height))
    ax.set_aspect("equal")
    ax.set_title(f"Step {tick.env_step}")
    for unit in np.flatnonzero(tick.alive):
        ally = unit < env.num_allies
        colour = ("blue", "cornflowerblue") if ally else ("green", "limegreen")
        radius = float(radii[tick.types[unit]])
        x, y = tick.positions[unit]
        ax.add_patch(Circle((x, y), radius, color=colour[unit in shot]))
        offset = radius / np.sqrt(2.0)
        ax.text(x - offset, y - offset, letters[tick.types[unit]], fontsize="xx-small", color="w")
    for shooter, target in pairs:
        start, end = tick.positions[shooter], tick.positions[target]
        position = (1.0 - tick.fraction) * start + tick.fraction * end
        ax.add_patch(Rectangle(tuple(position), 0.5, 0.5, color="gray"))


def save_battle_gif(
    env: Any, sequence: Sequence[tuple[Any, Any, dict[str, Any]]], path: str
) -> None:
    """Write the episode's world ticks as a GIF, one frame per tick.

    Args:
        env: jaxmarl's ``HeuristicEnemySMAX``.
        sequence: (key passed to ``step``, state before it, {ally: action}) per step.
        path: the GIF's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    ticks = expand_ticks(env, sequence)
    figure = Figure(figsize=(6, 5))
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    images = []
    for tick in ticks:
        draw_tick(ax, env, tick)
        canvas.draw()
        images.append(Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB"))
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=FRAME_MILLISECONDS, loop=0
    )
