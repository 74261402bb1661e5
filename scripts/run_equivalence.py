"""Do two commits train the same runs? Issue 40's check that a refactor changes no result.

Trains, with the test suite's tiny settings (tests/conftest.py), one run of each algorithm
(MAPPO, IPPO, QMIX, VDN, MATD3), a SePS run through its phase change, and a Kaleidoscope run
with SND killed after one chunk and resumed; writes every run's metrics and summary (less
timing), results files and file list to OUT/result.json. Run it in a checkout of each commit,
then compare:

    python scripts/run_equivalence.py /tmp/before        # at the old commit
    python scripts/run_equivalence.py /tmp/after         # at the new commit
    python scripts/run_equivalence.py --compare /tmp/before /tmp/after

About 7 minutes per commit on 2 cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TIMING = ("wall_seconds", "steps_per_second")
RESULT_FILES = ("marl_eval.json", "agent_masks.json", "preparation.json", "config.json")


def train_all(out: Path) -> None:
    """Train the runs into ``out`` and write ``out/result.json``."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from prism_marl.run import Trainer, resume
    from prism_marl.sharing import Kaleidoscope, SePS
    from tests.conftest import read_metrics, stable, tiny_config

    runs = {a: tiny_config(out / a, a) for a in ("mappo", "ippo", "qmix", "vdn", "matd3")}
    seps = SePS(pretrain_steps=64, num_clusters=2, vae_epochs=1)
    runs["seps"] = tiny_config(out / "seps", sharing=seps, total_steps=128)
    runs["resumed"] = tiny_config(
        out / "resumed", sharing=Kaleidoscope(), diversity_episodes=2, total_steps=128
    )
    result = {}
    for name, config in runs.items():
        if name == "resumed":
            Trainer(config, progress=False).run(max_chunks=1)
            summary = resume(config.run_dir, progress=False)
        else:
            summary = Trainer(config, progress=False).run()
        run_dir = Path(config.run_dir)
        entry = {
            "metrics": stable(read_metrics(run_dir)),
            "summary": {k: v for k, v in summary.items() if k not in TIMING},
            "files": sorted(p.name for p in run_dir.iterdir()),
        }
        for file in RESULT_FILES:
            if (run_dir / file).exists():
                entry[file] = json.loads((run_dir / file).read_text())
        entry.get("config.json", {}).pop("run_dir", None)
        result[name] = entry
        print(name, "trained", flush=True)
    (out / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True))


def compare(before: Path, after: Path) -> int:
    """Print each run's parts as equal or not; 0 when all are equal."""
    old = json.loads((before / "result.json").read_text())
    new = json.loads((after / "result.json").read_text())
    differ = 0
    for run in sorted(set(old) | set(new)):
        for part in sorted(set(old.get(run, {})) | set(new.get(run, {}))):
            same = old.get(run, {}).get(part) == new.get(run, {}).get(part)
            differ += not same
            print(f"{run:8s} {part:18s} {'equal' if same else 'DIFFERENT'}")
    return 1 if differ else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "--compare":
        sys.exit(compare(Path(args[1]), Path(args[2])))
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__.strip().splitlines()[0], "\nusage: run_equivalence.py OUT | --compare A B")
        sys.exit(2)
    train_all(Path(args[0]))
