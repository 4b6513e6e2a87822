#!/usr/bin/env bash
# Sampler settings on one trained image checkpoint: each setting draws N samples from the same noise (--seed 11)
# and is measured by `scorediff eval` (FD-cls, KID-cls, confident fraction, class shares). Used on selection-seed
# checkpoints to choose the presets' sampler (docs/images.md, "The sampler"); it prints one table row per setting.
#   bench/sampler_sweep.sh CKPT DATA "SAMPLER NFE CHURN TMIN TMAX NOISE [W GUIDE]" ...
# W and GUIDE (a checkpoint path) add autoguidance (sample.guidance, sample.guide) to that row.
# N (500), THREADS (1), EVAL_SEED (1: the selection seed's reference draw).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: bench/sampler_sweep.sh CKPT DATA 'SAMPLER NFE CHURN TMIN TMAX NOISE [W GUIDE]' ..." >&2
                  exit 2; }
ckpt=$1 data=$2
shift 2
n=${N:-500} threads=${THREADS:-1} eval_seed=${EVAL_SEED:-1}
[ -f "$ckpt" ] || { echo "sampler_sweep: no checkpoint '$ckpt'" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| sampler | NFE | s_churn | s_tmin | s_tmax | s_noise | w | guide | FD-cls | KID-cls |" \
  "confident / held-out | smallest share | largest share |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for spec in "$@"; do
  read -r -a fields <<< "$spec"
  read -r sampler nfe churn tmin tmax noise w guide extra <<< "$spec"
  # edm: 6 or 8 fields; another sampler: 2, or 8 with "–" for the four churn fields.
  [[ ( $sampler == edm && ( ${#fields[@]} == 6 || ${#fields[@]} == 8 ) ) ||
     ( $sampler != edm && ( ${#fields[@]} == 2 || ${#fields[@]} == 8 ) ) ]] ||
    { echo "sampler_sweep: '$spec' is not 'SAMPLER NFE CHURN TMIN TMAX NOISE [W GUIDE]' (CHURN to NOISE for edm only;" \
        "for another sampler write – for them)" >&2; exit 2; }
  sets=()
  [ "$sampler" = edm ] && sets=(--set "sample.s_churn=$churn" --set "sample.s_tmin=$tmin" --set "sample.s_tmax=$tmax"
                                --set "sample.s_noise=$noise")
  [ -n "$w" ] && sets+=(--set "sample.guidance=$w" --set "sample.guide=$guide")
  build/scorediff sample --ckpt "$ckpt" --sampler "$sampler" --nfe "$nfe" "${sets[@]}" -n "$n" --seed 11 \
    --threads "$threads" -q -o "$tmp/s.npy" > /dev/null
  build/scorediff eval --samples "$tmp/s.npy" --data "$data" --seed "$eval_seed" -q > "$tmp/e.json"
  /usr/bin/python3 - "$tmp/e.json" "$spec" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
s = sys.argv[2].split()
if s[0] != "edm":
    s[2:6] = ["–"] * 4
s = (s + ["1", "none"])[:8]
ratio = e["confident_fraction"] / e["confident_fraction_real"]
print(f"| {' | '.join(s)} | {e['fd_cls']:.2f} | {e['kid_cls']:.1f} | {ratio:.3f} | {min(e['class_fractions']):.3f} "
      f"| {max(e['class_fractions']):.3f} |")
PY
done
