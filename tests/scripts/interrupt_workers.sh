#!/usr/bin/env bash
# SIGINT to the launcher of a 2-worker run (as Ctrl-C would): every rank stops after the same step, rank 0
# writes that step's checkpoint, every process exits with 130, and --resume continues the run.
#   interrupt_workers.sh path/to/scorediff
name=interrupt_workers
source "$(dirname "$0")/long_run.sh" "$1"

kill -INT "$launcher"
wait_launcher
((status == 130)) || fail "exit status $status, expected 130"
step0=$(sed -n 's/.*training stopped at step \([0-9]*\) of.*/\1/p' err)
step1=$(sed -n 's/.*rank 1 stopped at step \([0-9]*\) of.*/\1/p' err)
[[ -n "$step0" && "$step0" == "$step1" ]] || fail "the ranks stopped at steps '$step0' and '$step1'"
[[ -f "run/ckpt/step-$step0.safetensors" ]] || fail "no checkpoint for step $step0"
"$bin" train --nproc 2 --threads 1 --no-sample -q --out run --resume --set train.steps=$((step0 + 20)) > out2 2> err2 ||
  { cat err2 >&2; fail "--resume failed"; }
grep -q "\"steps\":$((step0 + 20))" out2 || fail "the resumed run did not reach step $((step0 + 20)): $(cat out2)"
echo "interrupt_workers: both ranks stopped at step $step0; resumed to $((step0 + 20)); ok"
