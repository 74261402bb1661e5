"""Figures one run and `prism-marl resources` draw: learning curve, mask heatmap, Figure 5."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from prism_marl.resources import Resources  # noqa: E402


def save_figure_atomically(figure: plt.Figure, path: str | Path) -> None:
    """Write a PNG next to ``path`` and rename it into place (no half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png.tmp")
    os.close(handle)
    try:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        plt.close(figure)


def plot_resources(rows: Sequence[Resources], path: str | Path) -> None:
    """Draw Figure 5 from resource rows.

    Top: parameters (solid) and additional resource (dashed) against N on log axes. Bottom:
    normalized overhead = additional / (parameters + additional) against N.
    """
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 8), sharex=True)
    for index, name in enumerate(dict.fromkeys(r.strategy for r in rows)):
        series = sorted((r for r in rows if r.strategy == name), key=lambda r: r.num_agents)
        agents = [r.num_agents for r in series]
        color = f"C{index}"
        top.plot(agents, [r.parameters for r in series], "-o", color=color, ms=3, label=name)
        # Zero additional resource (FuPS) has no place on a log axis; it is left out.
        grows = [r for r in series if r.additional > 0]
        top.plot([r.num_agents for r in grows], [r.additional for r in grows], "--", color=color)
        bottom.plot(
            agents, [r.normalized_overhead for r in series], "-o", color=color, ms=3, label=name
        )
    top.set_xscale("log", base=2)
    top.set_yscale("log")
    top.set_ylabel("count (solid: parameters, dashed: additional)")
    top.set_title("Resources vs number of agents")
    top.legend(fontsize=8, ncol=2)
    bottom.set_xscale("log", base=2)
    bottom.set_xlabel("number of agents N")
    bottom.set_ylabel("normalized overhead")
    bottom.set_ylim(-0.02, 1.02)
    for axis in (top, bottom):
        axis.grid(True, which="both", alpha=0.3)
    save_figure_atomically(figure, path)


def plot_learning_curve(records: Sequence[dict], path: str | Path, title: str = "") -> None:
    """Evaluation return against environment steps: mean over seeds, shaded min–max."""
    import numpy as np

    steps = sorted({r["env_steps"] for r in records})
    figure, axis = plt.subplots(figsize=(6, 4))
    if steps:
        by_step = [[r["eval_return"] for r in records if r["env_steps"] == s] for s in steps]
        mean = np.array([np.mean(v) for v in by_step])
        axis.plot(steps, mean, "-o", ms=3, label="mean over seeds")
        axis.fill_between(
            steps, [min(v) for v in by_step], [max(v) for v in by_step], alpha=0.25, label="min–max"
        )
    axis.set_xlabel("environment steps per seed")
    axis.set_ylabel("evaluation return")
    axis.set_title(title)
    axis.grid(True, alpha=0.3)
    axis.legend()
    save_figure_atomically(figure, path)


def plot_agent_masks(masks: dict[str, Sequence[Sequence[float]]], path: str | Path) -> None:
    """Heatmaps of per-agent masks, one panel per layer: agents (rows) × singular values."""
    import numpy as np

    names = list(masks)
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names) + 1, 3), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        values = np.asarray(masks[name], dtype=float)
        image = axis.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
        axis.set_title(name)
        axis.set_xlabel("singular value index")
        axis.set_ylabel("agent")
        axis.set_yticks(range(values.shape[0]))
        figure.colorbar(image, ax=axis, fraction=0.046)
    save_figure_atomically(figure, path)
