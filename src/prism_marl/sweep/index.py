"""The sweep's index: ``RESULTS/index.jsonl``, one line per run, rewritten atomically.

Each line: run id, config hash, status, attempts, wall seconds, exit code, last error line,
where the run comes from (method, backbone, task, scale, budget) and, for a run copied by
``--reuse``, the run it was copied from. Only the sweep's driver
writes it; ``prism-marl report`` reads it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from prism_marl.results import read_jsonl, write_jsonl

INDEX_FILE = "index.jsonl"
Status = Literal["pending", "running", "finished", "failed", "stalled", "diverged", "locked"]
RETRYABLE = ("pending", "running", "failed", "stalled", "locked")
"""Statuses a new sweep (or a retry) runs again: a run found ``running`` was interrupted."""


@dataclasses.dataclass
class IndexEntry:
    """What the index records about one run."""

    run_id: str
    config_hash: str
    status: Status = "pending"
    attempts: int = 0
    wall_seconds: float = 0.0
    exit_code: int | None = None
    last_error: str = ""
    origin: dict[str, Any] = dataclasses.field(default_factory=dict)
    reused_from: str = ""
    """The finished run this one was copied from (``--reuse``), or empty when trained here."""

    def to_record(self) -> dict[str, Any]:
        """The index line."""
        return dataclasses.asdict(self)


def load_index(results: str | Path) -> dict[str, IndexEntry]:
    """Run id -> entry, from ``results/index.jsonl`` (empty when there is none)."""
    names = {f.name for f in dataclasses.fields(IndexEntry)}
    entries = {}
    for record in read_jsonl(Path(results) / INDEX_FILE):
        entry = IndexEntry(**{k: v for k, v in record.items() if k in names})
        entries[entry.run_id] = entry
    return entries


def save_index(results: str | Path, entries: dict[str, IndexEntry]) -> None:
    """Rewrite ``results/index.jsonl`` atomically, runs in id order."""
    write_jsonl(Path(results) / INDEX_FILE, [entries[k].to_record() for k in sorted(entries)])
