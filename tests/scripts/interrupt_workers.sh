#!/usr/bin/env bash
# SIGINT to the launcher of a 2-worker run (as Ctrl-C would): every rank stops after the same step, rank 0
# writes that step's checkpoint, every process exits with 130, and --resume continues the run.
#   interrupt_workers.sh path/to/scorediff
set -euo pipefail
bin=$(realpath "$1")
dir=$(mktemp -d)
trap 'kill -9 "${launcher:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "interrupt_workers: $*" >&2; echo "--- stderr:" >&2; cat err >&2; exit 1; }

"$bin" train --nproc 2 --threads 1 --no-sample --out run --set train.steps=1000000 --set train.ckpt_every=100 \
  2> err > out &
launcher=$!
for _ in $(seq 1200); do
  [[ -f run/last.safetensors ]] && break
  kill -0 "$launcher" 2>/dev/null || fail "the run ended before the interrupt"
  sleep 0.1
done
kill -INT "$launcher"
set +e
wait "$launcher"
status=$?
set -e
((status == 130)) || fail "exit status $status, expected 130"
step0=$(sed -n 's/.*training stopped at step \([0-9]*\) of.*/\1/p' err)
step1=$(sed -n 's/.*rank 1 stopped at step \([0-9]*\) of.*/\1/p' err)
[[ -n "$step0" && "$step0" == "$step1" ]] || fail "the ranks stopped at steps '$step0' and '$step1'"
[[ -f "run/ckpt/step-$step0.safetensors" ]] || fail "no checkpoint for step $step0"
"$bin" train --nproc 2 --threads 1 --no-sample -q --out run --resume --set train.steps=$((step0 + 20)) > out2 2> err2 ||
  { cat err2 >&2; fail "--resume failed"; }
grep -q "\"steps\":$((step0 + 20))" out2 || fail "the resumed run did not reach step $((step0 + 20)): $(cat out2)"
echo "interrupt_workers: both ranks stopped at step $step0; resumed to $((step0 + 20)); ok"
