#!/usr/bin/env bash
# Kills rank 1 of a 2-worker training run (SIGKILL, mid-run) and checks what issue 8 asks: rank 0 stops by
# itself within 60 s with a message naming the failed collective, the launcher names the lost rank and
# exits non-zero, and the last checkpoint loads (sampling from it succeeds).
#   kill_one_worker.sh path/to/scorediff
set -euo pipefail
bin=$(realpath "$1")
dir=$(mktemp -d)
trap 'kill -9 "${launcher:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "kill_one_worker: $*" >&2; echo "--- launcher and worker stderr:" >&2; cat err >&2; exit 1; }

"$bin" train --nproc 2 --threads 1 --no-sample --out run --set train.steps=1000000 --set train.ckpt_every=100 \
  --set train.log_every=100 2> err > out &
launcher=$!
# Wait (at most 120 s) until both workers run and rank 0 has written a checkpoint.
for _ in $(seq 1200); do
  [[ -f run/last.safetensors ]] && grep -q "rank 1 pid" err && break
  kill -0 "$launcher" 2>/dev/null || fail "the run ended before the kill"
  sleep 0.1
done
[[ -f run/last.safetensors ]] || fail "no checkpoint after 120 s"
rank1=$(sed -n 's/.*rank 1 pid \([0-9]*\).*/\1/p' err | head -n 1)
[[ -n "$rank1" ]] || fail "no pid for rank 1 in the launcher's output"
kill -9 "$rank1"
killed=$(date +%s)
set +e
wait "$launcher"
status=$?
set -e
elapsed=$(($(date +%s) - killed))
echo "launcher exit status $status, $elapsed s after the kill"
((status != 0)) || fail "exit status 0 after a worker was killed"
((elapsed <= 60)) || fail "the run took $elapsed s to stop (limit 60 s)"
grep -q "worker rank 1 (pid $rank1) was killed by signal 9" err || fail "the launcher did not name rank 1"
grep -q "rank 0: the gradient all-reduce of step [0-9]* failed" err || fail "rank 0 did not report the failed all-reduce"
"$bin" sample -q --ckpt run/last.safetensors --out s.npy -n 100 || fail "the last checkpoint does not load"
grep "error\|worker rank" err
echo "kill_one_worker: ok"
