#!/usr/bin/env bash
# Two scorediff binaries, interleaved, 1 thread: training steps/s (2 000 steps) and 10 000-point annealed
# Langevin evaluations/s (2 levels x 20 steps). For before/after measurements of a change:
#   bench/before_after.sh OLD_BINARY [NEW_BINARY=build/scorediff] [PAIRS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:?usage: bench/before_after.sh OLD_BINARY [NEW_BINARY] [PAIRS]}
after=${2:-build/scorediff}
pairs=${3:-5}
for b in "$before" "$after"; do [[ -x "$b" ]] || { echo "before_after: '$b' is not an executable" >&2; exit 2; }; done
for ((i = 0; i < pairs; i++)); do
  for b in "$before" "$after"; do
    printf '%s ' "$([[ $b == "$before" ]] && echo before || echo after)"
    "$b" bench --threads 1 --steps 2000 --points 10000 --levels 2 --steps-per-level 20 2>&1 |
      { grep -oE '(train|sample): *[0-9.]*' || true; } | tr '\n' ' '
    echo
  done
done
