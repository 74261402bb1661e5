"""Results files, the only thing analysis reads: all written atomically.

RUN_DIR/config.json, metrics.jsonl, summary.json, marl_eval.json, TensorBoard events and a
learning-curve PNG. A JSON file is written to a temporary sibling and renamed into place, so a
killed run never leaves a truncated file; metrics.jsonl is rewritten the same way.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write indented JSON."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSON-lines file (empty when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Atomically (re)write a JSON-lines file."""
    write_atomic(path, "".join(json.dumps(dict(r)) + "\n" for r in records))


def interquartile_mean(values: Sequence[float]) -> float:
    """Mean of the middle 50% (Agarwal et al., 2021): drop the lowest and highest quarters.

    Uses fractional weights at the quartile boundaries, so it is defined for any count.
    """
    data = np.sort(np.asarray(values, dtype=np.float64))
    n = len(data)
    if n == 0:
        return math.nan
    positions = (np.arange(n) + 0.5) / n
    weights = np.clip(
        np.minimum(positions + 0.5 / n, 0.75) - np.maximum(positions - 0.5 / n, 0.25), 0, None
    )
    return float(np.sum(weights * data) / np.sum(weights))


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over ``values`` (seeds)."""
    data = np.asarray(values, dtype=np.float64)
    if len(data) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def to_builtin(value: Any) -> Any:
    """Arrays and numpy scalars as JSON-ready Python values (NaN as None)."""
    array = np.asarray(value)
    if array.ndim == 0:
        item = array.item()
        if isinstance(item, float) and not math.isfinite(item):
            return None
        return item
    return [to_builtin(v) for v in array]
