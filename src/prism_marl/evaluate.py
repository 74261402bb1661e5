"""Evaluation of a saved run, and episode rendering."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.envs.base import RenderFrame
from prism_marl.errors import ConfigError
from prism_marl.run import Trainer

# The keys of ``prism-marl eval``'s episodes (``Evaluator.episodes``): a chunk index no
# run reaches, so they differ from every evaluation during training.
EVAL_CHUNK = 99_999


def load_trained(run_dir: str | Path) -> tuple[Trainer, Any]:
    """The run's trainer and its last checkpointed state (all seeds)."""
    trainer = Trainer.from_run_dir(run_dir, progress=False, field="RUN_DIR")
    state = trainer.restore_latest()
    if state is None:
        raise ConfigError(f"RUN_DIR: {run_dir} has no checkpoint to evaluate")
    return trainer, state


def evaluate_run(
    run_dir: str | Path, episodes: int, render: str | None = None, greedy: bool | None = None
) -> dict[str, Any]:
    """Return (and win rate) per seed over ``episodes`` episodes; optionally a GIF.

    Evaluates the greedy policy, or sampled actions when ``greedy`` is False, or the run's
    own evaluation mode when None; the GIF shows one greedy episode of seed 0.
    """
    trainer, state = load_trained(run_dir)
    if render:
        renderer(trainer)  # refused before minutes of evaluation
    evaluator = trainer.evaluator
    greedy = evaluator.greedy if greedy is None else greedy
    returns, won = evaluator.episodes(state.variables, episodes, chunk=EVAL_CHUNK, greedy=greedy)
    returns, won = np.asarray(returns), np.asarray(won)
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "episodes_per_seed": episodes,
        "greedy": greedy,
        "return_mean": float(returns.mean()),
        "return_per_seed": [float(r) for r in returns.mean(axis=1)],
    }
    if trainer.spec.has_win:
        result["win_rate_mean"] = float(won.mean())
    if render:
        variables = jax.tree_util.tree_map(lambda x: x[0], state.variables)
        render_episode(trainer, variables, render)
        result["render"] = render
    return result


def renderer(trainer: Trainer) -> Callable[[list[RenderFrame], str], None]:
    """The environment's GIF writer, or ``ConfigError`` (LBF, SMAX and MaMuJoCo have one)."""
    env = trainer.algo.env
    if not hasattr(env, "save_animation"):
        raise ConfigError(
            f"--render: not supported for {trainer.spec.env_id} (LBF, SMAX, MaMuJoCo only)"
        )
    return env.save_animation


def render_episode(trainer: Trainer, variables: dict[str, Any], path: str) -> None:
    """Play one greedy episode and save it as a GIF through the adapter's renderer."""
    save_animation = renderer(trainer)
    env, algo = trainer.algo.env, trainer.algo
    carry = algo.initial_carry(1)

    @jax.jit
    def act(carry: Any, step: Any) -> tuple[Any, jax.Array]:
        batched = jax.tree_util.tree_map(lambda x: x[None], step)
        carry, action = algo.act(
            variables, carry, batched, jnp.zeros((1,), bool), jax.random.PRNGKey(0), True
        )
        return carry, action[0]

    key = jax.random.PRNGKey(0)
    env_state, step = jax.jit(env.reset)(key)
    step_fn = jax.jit(env.step)
    frames = []
    for t in range(trainer.spec.episode_limit):
        carry, action = act(carry, step)
        step_key = jax.random.fold_in(key, t)
        frames.append(RenderFrame(step_key, env_state, action))
        env_state, step = step_fn(step_key, env_state, action)
        if bool(step.episode_end):
            break
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_animation(frames, path)
