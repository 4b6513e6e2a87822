#!/usr/bin/env bash
# Times scorediff against the Python peer (../shared/peers/toy_dsm.py: same network, objective, batch
# and sampler) in one run, with the same thread count, and prints both and their ratios.
#   bench/compare_peer.sh [THREADS...]        default: 1 2
# Environment: PEER (path of toy_dsm.py), PYTHON (/usr/bin/python3, Debian's python3-torch),
#              STEPS (2000), POINTS ("2000 10000": one table per count), REPEATS (3; the median of the
#              repeats is reported), PRECISIONS ("float32 bfloat16": scorediff's sampling precisions; training
#              is float32 in both). Peak resident memory is that of the whole process (training included).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
peer=${PEER:-$root/../shared/peers/toy_dsm.py}
python=${PYTHON:-/usr/bin/python3}
steps=${STEPS:-2000}
read -r -a points <<< "${POINTS:-2000 10000}"
repeats=${REPEATS:-3}
read -r -a precisions <<< "${PRECISIONS:-float32 bfloat16}"
threads=("$@")
((${#threads[@]})) || threads=(1 2)
[[ -f "$peer" ]] || { echo "compare_peer: peer '$peer' not found (set PEER)" >&2; exit 2; }
"$python" -c 'import torch' 2>/dev/null || { echo "compare_peer: $python has no torch (run scripts/setup.sh --bench)" >&2; exit 2; }
[[ -x build/scorediff ]] || { echo "compare_peer: build/scorediff missing (make build)" >&2; exit 2; }

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
for n in "${points[@]}"; do
  for t in "${threads[@]}"; do
    for ((r = 0; r < repeats; r++)); do
      # Same thread count for both: the peer calls torch.set_num_threads, OpenMP/OpenBLAS pools follow.
      OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$python" bench/summarize.py run peer "$t" "$results/$n" -- \
        "$python" "$peer" --threads "$t" --steps "$steps" --points "$n"
      for p in "${precisions[@]}"; do
        "$python" bench/summarize.py run "ours-$p" "$t" "$results/$n" -- \
          build/scorediff bench --json --threads "$t" --steps "$steps" --points "$n" --precision "$p"
      done
    done
  done
  "$python" bench/summarize.py table "$results/$n" \
    "Toy DSM (seed 001 ScoreNet, batch 256, $steps steps; annealed Langevin 10 x 100 on $n points)" peer \
    "train_steps_per_s=training steps/s" "sample_evals_per_s=sampling evaluations/s" \
    "sample_point_steps_per_s=sampling point-steps/s" "peak_rss_mb=peak resident memory, MB"
  echo
done
