#!/usr/bin/env bash
# Times scorediff's U-Net (the fashion-mnist preset's network and training recipe) against its Python
# twin (bench/peers/unet_peer.py: same layers, loss, optimiser, clipping, EMA and 35-NFE Heun sampler) in
# one run, with the same thread count, and prints both and their ratios.
#   bench/compare_unet.sh [THREADS...]        default: 1 2
# Environment: PYTHON (/usr/bin/python3, Debian's python3-torch), STEPS (20), IMAGES (64), REPEATS (3;
#              the median is reported), PRECISIONS ("bfloat16 float32": scorediff's model.conv_precision
#              values to time), PEER_SETTINGS ("float32 autocast autocast+channels-last float32+channels-last":
#              the twin's settings to time; the ratios are against the best of them for each metric).
# The twin runs with glibc's heap kept (MALLOC_*: what scorediff does with mallopt), which made it up to
# ten times faster on this machine (docs/performance.md): each side at its best settings.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-/usr/bin/python3}
steps=${STEPS:-20}
images=${IMAGES:-64}
repeats=${REPEATS:-3}
read -r -a precisions <<< "${PRECISIONS:-bfloat16 float32}"
read -r -a settings <<< "${PEER_SETTINGS:-float32 autocast autocast+channels-last float32+channels-last}"
threads=("$@")
((${#threads[@]})) || threads=(1 2)
"$python" -c 'import torch' 2>/dev/null || { echo "compare_unet: $python has no torch (run scripts/setup.sh)" >&2; exit 2; }
[[ -x build/scorediff ]] || { echo "compare_unet: build/scorediff missing (make build)" >&2; exit 2; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for t in "${threads[@]}"; do
  for ((r = 0; r < repeats; r++)); do
    for s in "${settings[@]}"; do
      flags=()
      [[ $s == *autocast* ]] && flags+=(--autocast)
      [[ $s == *channels-last* ]] && flags+=(--channels-last)
      OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 \
        MALLOC_TOP_PAD_=67108864 "$python" bench/summarize.py run "peer-$s" "$t" "$results" -- \
        "$python" bench/peers/unet_peer.py bench --threads "$t" --steps "$steps" --images "$images" "${flags[@]}"
    done
    for p in "${precisions[@]}"; do
      "$python" bench/summarize.py run "ours-$p" "$t" "$results" -- \
        build/scorediff bench --unet --json --threads "$t" --steps "$steps" --images "$images" --set "model.conv_precision=$p"
    done
  done
done
"$python" bench/summarize.py table "$results" \
  "U-Net (fashion-mnist preset, 1.13 M parameters, batch 64, $steps steps; Heun 35 NFE on $images images)" \
  peer "train_steps_per_s=training steps/s" "sample_images_per_s=sampling images/s" "peak_rss_mb=peak resident memory, MB"
