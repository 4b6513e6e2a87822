#!/usr/bin/env bash
# U-Net training throughput with 1 and with 2 worker processes (1 thread each) on this machine, and the
# share of the 2-process run spent in the gradient all-reduce (docs/distributed.md).
#   bench/data_parallel.sh [CONFIG [TRAIN OPTIONS...]]   default: mnist (the U-Net preset); STEPS (120), NPROCS ("1 2")
# The options after CONFIG go to every `train`, e.g. --set model.conv_precision=float32.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-mnist}
shift $(( $# > 0 ? 1 : 0 ))
steps=${STEPS:-120}
read -r -a nprocs <<< "${NPROCS:-1 2}"
[[ -x build/scorediff ]] || { echo "data_parallel: build/scorediff missing (make build)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '| processes | steps/s | speed-up | all-reduce share | final loss |\n|---|---|---|---|---|\n'
base=""
for n in "${nprocs[@]}"; do
  build/scorediff train --config "$config" --threads 1 --no-sample -q --nproc "$n" --out "$out/run-$n" \
    --set train.steps="$steps" --set train.log_every="$steps" --set train.sample_every=0 "$@" > "$out/result-$n.json"
  /usr/bin/python3 - "$out/result-$n.json" "$n" "$base" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
speed = r["steps"] / r["train_seconds"]
base = float(sys.argv[3]) if sys.argv[3] else speed
share = r.get("allreduce_seconds", 0.0) / r["train_seconds"]
print(f"| {sys.argv[2]} | {speed:.3f} | {speed / base:.2f}x | {share:.1%} | {r['final_loss']:.2f} |")
open(sys.argv[1] + ".speed", "w").write(str(speed))
PY
  [[ -n "$base" ]] || base=$(cat "$out/result-$n.json.speed")
done
