#!/usr/bin/env bash
# Times scorediff's U-Net (the fashion-mnist preset's network and training recipe) against its Python
# twin (bench/peers/unet_peer.py: same layers, loss, optimiser, clipping, EMA and 35-NFE Heun sampler) in
# one run, with the same thread count, and prints both and their ratios.
#   bench/compare_unet.sh [THREADS...]        default: 1 2
# Environment: PYTHON (/usr/bin/python3, Debian's python3-torch), STEPS (20), IMAGES (64), REPEATS (3;
#              the median is reported), PRECISIONS ("bfloat16 float32": scorediff's model.conv_precision
#              values to time; the peer is what a user would write, float32).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-/usr/bin/python3}
steps=${STEPS:-20}
images=${IMAGES:-64}
repeats=${REPEATS:-3}
read -r -a precisions <<< "${PRECISIONS:-bfloat16 float32}"
threads=("$@")
((${#threads[@]})) || threads=(1 2)
"$python" -c 'import torch' 2>/dev/null || { echo "compare_unet: $python has no torch (run scripts/setup.sh)" >&2; exit 2; }
[[ -x build/scorediff ]] || { echo "compare_unet: build/scorediff missing (make build)" >&2; exit 2; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for t in "${threads[@]}"; do
  for ((r = 0; r < repeats; r++)); do
    OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$python" bench/peers/unet_peer.py bench --threads "$t" --steps "$steps" \
      --images "$images" | sed "s/^/peer $t /" >> "$results"
    for p in "${precisions[@]}"; do
      build/scorediff bench --unet --json --threads "$t" --steps "$steps" --images "$images" --set "model.conv_precision=$p" \
        | sed "s/^/ours-$p $t /" >> "$results"
    done
  done
done

"$python" - "$results" "$steps" "$images" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    who, threads, payload = line.split(" ", 2)
    rows.setdefault((who, int(threads)), []).append(json.loads(payload))
keys = [("train_steps_per_s", "training steps/s"), ("sample_images_per_s", "sampling images/s")]
print(f"U-Net (fashion-mnist preset, 1.13 M parameters, batch 64, {sys.argv[2]} steps; Heun 35 NFE on {sys.argv[3]} images)")
print(f"median of {len(next(iter(rows.values())))} runs each, interleaved\n")
print("| threads | metric | scorediff | convolutions | Python peer (float32) | ratio |")
print("|---|---|---|---|---|---|")
for threads in sorted({t for _, t in rows}):
    for key, label in keys:
        peer = statistics.median(r[key] for r in rows[("peer", threads)])
        for who in sorted(w for w, t in rows if t == threads and w != "peer"):
            ours = statistics.median(r[key] for r in rows[(who, threads)])
            print(f"| {threads} | {label} | {ours:,.2f} | {who[5:]} | {peer:,.2f} | {ours / peer:.2f}x |")
PY
