#!/usr/bin/env bash
# The fashion-mnist preset's U-Net under variants of its settings, interleaved: `scorediff bench --unet` (20
# training steps of batch 64 unless STEPS, 64 images at 35 NFE) at each thread count, REPEATS rounds: the median per variant
# (the range in brackets).
#   bench/unet_variants.sh THREADS "LABEL=SET[;SET...]" ...   REPEATS (3), STEPS (20); a SET is a key=value of the preset
# e.g. bench/unet_variants.sh "1 2" "nchw=model.channels_last=false" "nhwc=model.channels_last=true"
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bench/unet_variants.sh THREADS 'LABEL=SET[;SET...]' ..." >&2; exit 2; }
[[ -x build/scorediff ]] || { echo "unet_variants: build/scorediff missing (make build)" >&2; exit 2; }
read -r -a threads <<< "$1"
shift
repeats=${REPEATS:-3}
steps=${STEPS:-20}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 0; r < repeats; r++)); do
  for t in "${threads[@]}"; do
    for variant in "$@"; do
      label=${variant%%=*}
      sets=()
      IFS=';' read -r -a keys <<< "${variant#*=}"
      for k in "${keys[@]}"; do sets+=(--set "$k"); done
      record=$(build/scorediff bench --unet --threads "$t" --steps "$steps" --json "${sets[@]}")
      printf '%s %s %s\n' "$label" "$t" "$record" >> "$out"
    done
  done
done
/usr/bin/python3 - "$out" <<'PY'
import collections, json, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, threads, record = line.split(" ", 2)
    runs[(label, int(threads))].append(json.loads(record))
keys = [k for k in next(iter(runs.values()))[0] if k.endswith("_per_s")]
print("| variant | threads | " + " | ".join(keys) + " | rounds |")
print("|---|---|" + "---|" * len(keys) + "---|")
for (label, threads), records in runs.items():
    cells = [f"{statistics.median(r[k] for r in records):.3f} ({min(r[k] for r in records):.3f}–"
             f"{max(r[k] for r in records):.3f})" for k in keys]
    print(f"| {label} | {threads} | " + " | ".join(cells) + f" | {len(records)} |")
PY
