#!/usr/bin/env bash
# train --nproc 2 --max-restarts 5 with one worker SIGKILLed at 5 random moments of training (drawn from a
# seeded generator): the launcher starts the workers again from the last checkpoint each time, the run
# finishes, every tensor of its last.safetensors equals the uninterrupted run's, and train.jsonl logs the 5
# restarts. Each kill waits until the start it hits has logged a step: a kill during the rendezvous would
# cost the launcher's 10 s grace, not test more.
#   kill_restarts.sh SCOREDIFF [KILLS]
set -euo pipefail
bin=$(realpath "$1")
scripts=$(dirname "$(realpath "$0")")
kills=${2:-5}
dir=$(mktemp -d)
trap '[[ -z "${launcher:-}" ]] || kill -9 "$launcher" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "kill_restarts: $*" >&2; echo "--- launcher and worker stderr:" >&2; tail -n 30 err >&2; exit 1; }

train=(train --no-sample --threads 1 --seed 5 --set train.steps=1200 --set train.ckpt_every=50 --set train.log_every=50)
"$bin" "${train[@]}" -q --nproc 2 --out straight > /dev/null 2> straight.err || { cat straight.err >&2; exit 1; }

"$bin" "${train[@]}" --nproc 2 --max-restarts "$kills" --out run > out 2> err &
launcher=$!
RANDOM=11  # the moments of the kills are reproducible
for ((k = 1; k <= kills; ++k)); do
  # Wait for start k (the launcher lists its workers' pids) to log a step (the last line of train.jsonl is
  # then a step, not the restart before it), then a random 0-0.45 s more.
  for _ in $(seq 600); do
    (($(grep -c "workers on" err) >= k)) && tail -n 1 run/train.jsonl 2>/dev/null | grep -q '"loss"' && break
    kill -0 "$launcher" 2>/dev/null || fail "the run ended before kill $k"
    sleep 0.05
  done
  (($(grep -c "workers on" err) >= k)) || fail "start $k did not come within 30 s"
  tail -n 1 run/train.jsonl 2>/dev/null | grep -q '"loss"' || fail "start $k logged no step within 30 s"
  sleep "$(printf '0.%02d' $((RANDOM % 10 * 5)))"
  rank=$((RANDOM % 2))
  pid=$(grep "workers on" err | tail -n 1 | sed -n "s/.*worker rank $rank pid \([0-9]*\).*/\1/p")
  [[ -n "$pid" ]] || fail "no pid for rank $rank"
  kill -0 "$launcher" 2>/dev/null || fail "the run ended before kill $k"
  kill -9 "$pid" 2>/dev/null || true
  logged=$(grep -o '"step":[0-9]*' run/train.jsonl 2>/dev/null | tail -n 1 | cut -d: -f2 || true)
  echo "kill $k: rank $rank (pid $pid); last logged step: ${logged:-none yet}"
done
set +e
wait "$launcher"
status=$?
set -e
unset launcher
((status == 0)) || fail "the run ended with status $status"
restarts=$(grep -c '"event":"restart"' run/train.jsonl || true)
echo "finished with status 0 after $(grep -c "^scorediff: restart" err) restarts; train.jsonl logs $restarts"
((restarts == kills)) || fail "train.jsonl logs $restarts restarts, not $kills"
d=$(/usr/bin/python3 "$scripts/max_difference.py" straight/last.safetensors run/last.safetensors "")
grep '"event"' run/train.jsonl | sed 's/^/  /'
echo "largest difference over every tensor of last.safetensors from the uninterrupted run: $d"
[[ "$d" == "0.0" ]] || fail "the restarted run differs from the uninterrupted one by $d"
echo "kill_restarts: ok"
