"""Each seed's best policy: per-seed replacement, ties, and the checkpoints a resume reads."""

import jax.numpy as jnp
import numpy as np

from prism_marl.best_policy import BestCheckpoints, improve


def variables(value):
    """Three seeds' variables: a [3, 2] kernel and a [3] bias, every entry ``value[seed]``."""
    value = np.asarray(value, dtype=np.float32)
    return {"params": {"w": jnp.tile(value[:, None], (1, 2)), "b": jnp.asarray(value)}}


def test_each_seed_keeps_its_own_best():
    best = improve(None, variables([0, 0, 0]), np.array([[0.1, 0.3], [0.5, 0.5], [0.2, 0.2]]), 0)
    assert best.returns.tolist() == [0.2, 0.5, 0.2] and best.env_steps.tolist() == [0, 0, 0]
    # seed 0 improves, seed 1 ties (keeps the earlier policy), seed 2 gets worse
    new = improve(best, variables([1, 1, 1]), np.array([[0.4], [0.5], [0.0]]), 64)
    assert new.returns.tolist() == [0.4, 0.5, 0.2] and new.env_steps.tolist() == [64, 0, 0]
    assert new.variables["params"]["w"].tolist() == [[1, 1], [0, 0], [0, 0]]
    assert new.variables["params"]["b"].tolist() == [1, 0, 0]
    assert improve(new, variables([2, 2, 2]), np.zeros((3, 1)), 128) is None  # nothing to save


def test_checkpoints_restore_the_latest_up_to_a_point(tmp_path):
    checkpoints = BestCheckpoints(tmp_path)
    try:
        first = improve(None, variables([0, 0, 0]), np.zeros((3, 1)), 0)
        second = improve(first, variables([1, 1, 1]), np.ones((3, 1)), 64)
        checkpoints.save(0, first)
        checkpoints.save(1, second)
        template = variables([9, 9, 9])
        restored = checkpoints.restore(template, up_to=1)
        assert np.asarray(restored.variables["params"]["b"]).tolist() == [1, 1, 1]
        assert restored.env_steps.tolist() == [64, 64, 64]
        # A resume from point 0: point 1's save belongs to the point it repeats, and goes.
        restored = checkpoints.restore(template, up_to=0)
        assert np.asarray(restored.variables["params"]["b"]).tolist() == [0, 0, 0]
        assert checkpoints.manager.all_steps() == [0]
        checkpoints.save(0, second)  # saving a point again replaces it
        checkpoints.clear()
        assert checkpoints.restore(template, up_to=5) is None
    finally:
        checkpoints.close()
