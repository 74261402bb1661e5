"""Results files, the only thing analysis reads: all written atomically.

RUN_DIR/config.json, metrics.jsonl, summary.json, marl_eval.json, TensorBoard events and a
learning-curve PNG. A JSON file is written to a temporary sibling and renamed into place, so a
killed run never leaves a truncated file; metrics.jsonl is rewritten the same way. The
statistics in summary.json come from ``prism_marl.report.stats``, the report's too.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
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


def to_builtin(value: Any) -> Any:
    """Arrays and numpy scalars as JSON-ready Python values (NaN as None)."""
    array = np.asarray(value)
    if array.ndim == 0:
        item = array.item()
        if isinstance(item, float) and not math.isfinite(item):
            return None
        return item
    return [to_builtin(v) for v in array]
