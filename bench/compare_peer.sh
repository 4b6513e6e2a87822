#!/usr/bin/env bash
# Times scorediff against the Python peer (../shared/peers/toy_dsm.py: same network, objective, batch
# and sampler) in one run, with the same thread count, and prints both and their ratios.
#   bench/compare_peer.sh [THREADS...]        default: 1 2
# Environment: PEER (path of toy_dsm.py), PYTHON (/usr/bin/python3, Debian's python3-torch),
#              STEPS (2000), POINTS (10000), REPEATS (3; the median of the repeats is reported).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
peer=${PEER:-$root/../shared/peers/toy_dsm.py}
python=${PYTHON:-/usr/bin/python3}
steps=${STEPS:-2000}
points=${POINTS:-10000}
repeats=${REPEATS:-3}
threads=("$@")
((${#threads[@]})) || threads=(1 2)
[[ -f "$peer" ]] || { echo "compare_peer: peer '$peer' not found (set PEER)" >&2; exit 2; }
"$python" -c 'import torch' 2>/dev/null || { echo "compare_peer: $python has no torch (run scripts/setup.sh --bench)" >&2; exit 2; }
[[ -x build/scorediff ]] || { echo "compare_peer: build/scorediff missing (make build)" >&2; exit 2; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for t in "${threads[@]}"; do
  for ((r = 0; r < repeats; r++)); do
    # Same thread count for both: the peer calls torch.set_num_threads, OpenMP/OpenBLAS pools follow.
    OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$python" "$peer" --threads "$t" --steps "$steps" --points "$points" \
      | sed "s/^/peer $t /" >> "$results"
    build/scorediff bench --json --threads "$t" --steps "$steps" --points "$points" | sed "s/^/ours $t /" >> "$results"
  done
done

"$python" - "$results" "$steps" "$points" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    who, threads, payload = line.split(" ", 2)
    rows.setdefault((who, int(threads)), []).append(json.loads(payload))
keys = [("train_steps_per_s", "training steps/s"), ("sample_evals_per_s", "sampling evaluations/s"),
        ("sample_point_steps_per_s", "sampling point-steps/s")]
print(f"Toy DSM (seed 001 ScoreNet, batch 256, {sys.argv[2]} steps; annealed Langevin 10 x 100 on {sys.argv[3]} points)")
print(f"median of {len(next(iter(rows.values())))} runs each, interleaved\n")
print(f"| threads | metric | scorediff | Python peer | ratio |")
print(f"|---|---|---|---|---|")
for threads in sorted({t for _, t in rows}):
    for key, label in keys:
        ours = statistics.median(r[key] for r in rows[("ours", threads)])
        peer = statistics.median(r[key] for r in rows[("peer", threads)])
        print(f"| {threads} | {label} | {ours:,.1f} | {peer:,.1f} | {ours / peer:.2f}x |")
PY
