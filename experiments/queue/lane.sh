#!/bin/bash
# One lane of a queue of sweeps, for running the protocol's confirmation on a small machine in
# parts. Each line of LANE_FILE is "FILE SCALE ONLY TAG [EXTRA SWEEP FLAGS]" and runs as its own
# sweep into results/<FILE stem>-<SCALE>-<TAG>; a sweep that finished is skipped on a restart,
# and an interrupted one resumes from its runs' checkpoints. Two lanes run side by side:
#   (setsid nohup experiments/queue/lane.sh experiments/queue/laneA.txt >/dev/null 2>&1 &)
# then `prism-marl`-free merging: python experiments/queue/merge.py results docs/results
cd "$(dirname "$0")/../.." || exit 1
mkdir -p results/queue-logs
while read -r file scale only tag extra; do
  [ -z "$file" ] && continue
  case "$file" in \#*) continue ;; esac
  out="results/$(basename "$file" .toml)-$scale-$tag"
  [ -f "$out.done" ] && continue
  echo "$(date -u +%FT%TZ) start $out" >> results/queue-logs/lanes.log
  # shellcheck disable=SC2086  # EXTRA holds several flags
  .venv/bin/prism-marl sweep "$file" --scale "$scale" --only "$only" --results "$out" $extra \
    >> "results/queue-logs/$(basename "$out").log" 2>&1 && touch "$out.done"
  echo "$(date -u +%FT%TZ) end $out rc=$?" >> results/queue-logs/lanes.log
done < "$1"
