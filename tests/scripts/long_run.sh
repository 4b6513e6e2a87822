# Sourced by the data-parallel script tests: starts a long 2-worker training run of "$1" (the scorediff
# binary) in a temporary directory, in the background, and waits until rank 0 has written a checkpoint.
# Sets: bin, dir, launcher (the launcher's pid); files: err (stderr), run/ (the run directory).
# The sourcing script sets `name` first; fail MESSAGE prints the run's stderr and exits 1.
set -euo pipefail
bin=$(realpath "$1")
dir=$(mktemp -d)
trap '[[ -z "${launcher:-}" ]] || kill -9 "$launcher" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "$name: $*" >&2; echo "--- launcher and worker stderr:" >&2; cat err >&2; exit 1; }

"$bin" train --nproc 2 --threads 1 --no-sample --out run --set train.steps=1000000 --set train.ckpt_every=100 \
  --set train.log_every=100 2> err > out &
launcher=$!
# At most 120 s for both workers to start and rank 0 to write its first checkpoint.
for _ in $(seq 1200); do
  [[ -f run/last.safetensors ]] && grep -q "rank 1 pid" err && break
  kill -0 "$launcher" 2>/dev/null || fail "the run ended before it was disturbed"
  sleep 0.1
done
[[ -f run/last.safetensors ]] || fail "no checkpoint after 120 s"

# Waits for the launcher; sets `status` to its exit status.
wait_launcher() {
  set +e
  wait "$launcher"
  status=$?
  set -e
  unset launcher
}
