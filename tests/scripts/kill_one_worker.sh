#!/usr/bin/env bash
# Kills rank 1 of a 2-worker training run (SIGKILL, mid-run) and checks what issue 8 asks: rank 0 stops by
# itself within 60 s with a message naming the failed collective, the launcher names the lost rank and
# exits non-zero, and the last checkpoint loads (sampling from it succeeds).
#   kill_one_worker.sh path/to/scorediff
name=kill_one_worker
source "$(dirname "$0")/long_run.sh" "$1"

rank1=$(sed -n 's/.*rank 1 pid \([0-9]*\).*/\1/p' err | head -n 1)
[[ -n "$rank1" ]] || fail "no pid for rank 1 in the launcher's output"
kill -9 "$rank1"
killed=$(date +%s)
wait_launcher
elapsed=$(($(date +%s) - killed))
echo "launcher exit status $status, $elapsed s after the kill"
((status != 0)) || fail "exit status 0 after a worker was killed"
((elapsed <= 60)) || fail "the run took $elapsed s to stop (limit 60 s)"
grep -q "worker rank 1 (pid $rank1) was killed by signal 9" err || fail "the launcher did not name rank 1"
grep -q "rank 0: the gradient all-reduce of step [0-9]* failed" err || fail "rank 0 did not report the failed all-reduce"
"$bin" sample -q --ckpt run/last.safetensors --out s.npy -n 100 || fail "the last checkpoint does not load"
grep "error\|worker rank" err
echo "kill_one_worker: ok"
