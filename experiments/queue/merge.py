"""Merge the lanes' sweep directories into one directory per experiment and scale.

    python experiments/queue/merge.py results docs/results

Every finished run (one with ``summary.json``) of every sweep directory under SOURCE is copied
to TARGET/<experiment>-<scale>/ with the files ``prism-marl report`` reads (no checkpoints,
TensorBoard events or logs), and TARGET's index lists the finished runs only, each with the
index entry of the sweep that finished it. Runs already in TARGET stay.
"""

import json
import shutil
import sys
from pathlib import Path

KEEP = {"config.json", "metrics.jsonl", "summary.json", "marl_eval.json", "agent_masks.json"}


def main(source: Path, target: Path) -> None:
    groups: dict[str, list[tuple[Path, dict]]] = {}
    for lane in sorted(source.iterdir()):
        if (lane / "sweep.json").exists():
            sweep = json.loads((lane / "sweep.json").read_text())
            groups.setdefault(f"{sweep['experiment']}-{sweep['scale']}", []).append((lane, sweep))
    for name, lanes in groups.items():
        out = target / name
        index = out / "index.jsonl"
        entries = {}
        if index.exists():
            for line in index.read_text().splitlines():
                entry = json.loads(line)
                entries[entry["run_id"]] = entry
        for lane, sweep in lanes:
            for line in (lane / "index.jsonl").read_text().splitlines():
                entry = json.loads(line)
                run = lane / entry["run_id"]
                if not (run / "summary.json").exists():
                    continue
                (out / run.name).mkdir(parents=True, exist_ok=True)
                for path in run.iterdir():
                    if path.name in KEEP:
                        shutil.copy2(path, out / run.name / path.name)
                entries[entry["run_id"]] = {**entry, "status": "finished"}
            (out / "sweep.json").write_text(json.dumps(sweep, indent=2) + "\n")
        if entries:
            index.write_text("".join(json.dumps(entries[k]) + "\n" for k in sorted(entries)))
            print(f"{name}: {len(entries)} finished runs in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
