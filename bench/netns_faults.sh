#!/usr/bin/env bash
# Two hosts on a network path (tests/scripts/netns.sh: namespaces, veth pairs, the user-space wire) under each
# fault: one rank per host, 1 thread each, STEPS steps of CONFIG. Prints a table row per fault: steps/s and the
# all-reduce share of rank 0's training time, and the largest parameter difference from the clean link's run.
# Needs root.
#   bench/netns_faults.sh [CONFIG [STEPS]]       (mnist, 30; WIRE=build/scorediff_wire, BIN=build/scorediff)
# Extra train options go in TRAIN_SETS, e.g. TRAIN_SETS="--set model.conv_precision=float32".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config=${1:-mnist}
steps=${2:-30}
source "$root/tests/scripts/netns.sh" netns_faults "${BIN:-$root/build/scorediff}" "${WIRE:-$root/build/scorediff_wire}"
read -r -a extra <<< "${TRAIN_SETS:-}"
netns_hosts 2

run() {  # run OUT: both ranks over the wire as it is; prints rank 0's result line
  local out=$1 i pids=()
  for i in 0 1; do
    on_host "$i" "$bin" train -q --no-sample --config "$config" --threads 1 --set train.steps="$steps" \
      --set train.ckpt_every=1000000 --set train.sample_every=0 "${extra[@]}" --out "$out" --world-size 2 \
      --rank "$i" --master-addr 10.213.0.1 --master-port 29500 --timeout 120 > "$out.$i.out" 2> "$out.$i.err" &
    pids+=($!)
  done
  wait "${pids[0]}" && wait "${pids[1]}" || return 1
  cat "$out.0.out"
}

echo "| link | steps/s | all-reduce share (rank 0) | largest parameter difference from the clean link |"
echo "|---|---|---|---|"
for fault in "clean:" "20 ms:--delay-ms 20" "1 % loss:--loss 0.01" "20 ms, 1 % loss:--delay-ms 20 --loss 0.01" \
             "5 % loss:--loss 0.05" "1000 Mbit/s:--rate-mbit 1000" "100 Mbit/s:--rate-mbit 100"; do
  label=${fault%%:*}
  read -r -a options <<< "${fault#*:}"
  netns_wire "${options[@]}"
  out=$(echo "$label" | tr -c 'a-z0-9\n' '_')
  run "$out" > "$out.json" || fail "the run over '$label' failed"
  d=$(max_difference clean/last.safetensors "$out/last.safetensors" model.)
  /usr/bin/python3 - "$out.json" "$label" "$d" << 'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["train_seconds"]
print(f"| {sys.argv[2]} | {r['steps'] / t:.2f} | {100 * r['allreduce_seconds'] / t:.0f} % | {float(sys.argv[3]):.1e} |")
PY
done
