#!/usr/bin/env bash
# Two hosts on a real network path (tests/scripts/netns.sh): rank 0 in one namespace, rank 1 in another,
# their Gloo and store connections between 10.213.0.1 and 10.213.0.2 through the wire. Checks that
#  - over a clean link, 20 steps give the 1-process run's parameters within 1e-5, with every worker socket
#    on the veth addresses (printed);
#  - with 20 ms delay and 1 % loss each way, the run gives the same result; steps/s and the all-reduce share
#    of both links are printed;
#  - with the link cut for longer than --timeout, both workers stop within timeout + 30 s, each with one line
#    naming the unreachable rank, with a non-zero status, and the last checkpoint loads; the same holds for a
#    cut while rank 1 waits for rank 0 to finish work of its own (a sample grid);
#  - the same cut with --max-restarts 2 on both hosts and the link restored after 8 s: each host starts its
#    worker again, they meet once the link is back, and the run ends equal, tensor for tensor, to an
#    uninterrupted one, with the restart in train.jsonl.
#   netns_two_hosts.sh SCOREDIFF WIRE [paths|cuts|all]
# "paths" runs the first two checks, "cuts" the others (two ctest tests, each well under a minute).
part=${3:-all}
[[ $part == paths || $part == cuts || $part == all ]] || { echo "netns_two_hosts: unknown part '$part'" >&2; exit 2; }
source "$(dirname "$0")/netns.sh" "netns_two_hosts ($part)" "$1" "$2"

netns_hosts 2
dist() {  # dist OUT [options]: both ranks, rank 0 at 10.213.0.1; waits for both; prints "status0 status1"
  local out=$1
  shift
  on_host 0 "$bin" "${train[@]}" --out "$out" --world-size 2 --rank 0 --master-addr 10.213.0.1 --master-port 29500 \
    "$@" > "$out.0.out" 2> "$out.0.err" &
  local p0=$!
  on_host 1 "$bin" "${train[@]}" --out "$out" --world-size 2 --rank 1 --master-addr 10.213.0.1 --master-port 29500 \
    "$@" > "$out.1.out" 2> "$out.1.err" &
  local p1=$!
  set +e
  wait "$p0"
  local s0=$?
  wait "$p1"
  local s1=$?
  set -e
  echo "$s0 $s1"
}
# steps/s and all-reduce share of rank 0's result line.
speed() {
  /usr/bin/python3 - "$1" << 'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["train_seconds"]
print(f"{r['steps'] / t:.1f} steps/s, all-reduce {100 * r['allreduce_seconds'] / t:.0f} % of the training time")
PY
}

if [[ $part != cuts ]]; then
train=(train -q --no-sample --threads 1 --seed 3 --set train.steps=20 --set train.log_every=5 --set train.warmup=5)
"$bin" "${train[@]}" --out one > one.out 2> one.err || fail "the 1-process run failed"
# Clean link.
netns_wire
[[ $(dist clean) == "0 0" ]] || fail "the 2-host run over the clean link failed"
d=$(max_difference one/last.safetensors clean/last.safetensors model.)
echo "clean link: largest parameter difference from 1 process: $d; $(speed clean.0.out)"
/usr/bin/python3 -c "import sys; sys.exit(float(sys.argv[1]) > 1e-5)" "$d" || fail "parameters differ by $d > 1e-5"
# 20 ms each way and 1 % of the frames lost in each direction.
netns_wire --delay-ms 20 --loss 0.01
[[ $(dist lossy) == "0 0" ]] || fail "the 2-host run under 20 ms delay and 1 % loss failed"
d=$(max_difference one/last.safetensors lossy/last.safetensors model.)
echo "20 ms, 1 % loss: largest parameter difference from 1 process: $d; $(speed lossy.0.out)"
/usr/bin/python3 -c "import sys; sys.exit(float(sys.argv[1]) > 1e-5)" "$d" || fail "parameters differ by $d > 1e-5"
fi
[[ $part == paths ]] && { echo "netns_two_hosts ($part): ok"; exit 0; }

# The link cut for longer than --timeout (3 s): rank 1 is unreachable from rank 0 and the other way round.
netns_wire
# Checkpoints 200 steps apart: the cut comes right after one, in the collectives (a cut while rank 1 waits for
# rank 0 is the next scenario).
train=(train -q --no-sample --threads 1 --seed 3 --set train.steps=1000000 --set train.ckpt_every=200
       --set train.log_every=200)
dist cut --timeout 3 > cut.status &
runner=$!
for _ in $(seq 600); do [[ -f cut/last.safetensors ]] && break; sleep 0.1; done
[[ -f cut/last.safetensors ]] || fail "no checkpoint within 60 s"
# The workers' sockets while they train: store and Gloo connections between the two veth addresses only.
{ on_host 0 ss -tn state established; on_host 1 ss -tn state established; } > sockets.txt
grep -Eq '10\.213\.0\.2\]?:[0-9]+ +(\[::ffff:)?10\.213\.0\.1\]?:29500' sockets.txt ||
  fail "no store connection from 10.213.0.2 to 10.213.0.1"
grep -v ':29500' sockets.txt | grep -Eq '10\.213\.0\.(1:[0-9]+ +10\.213\.0\.2|2:[0-9]+ +10\.213\.0\.1):[0-9]+' ||
  fail "no Gloo connection between 10.213.0.1 and 10.213.0.2"
! grep -q "127.0.0.1" sockets.txt || fail "a worker socket is on loopback"
echo "worker sockets seen (peer pairs):"
awk '/10.213/ {print "  " $(NF-1) " <-> " $NF}' sockets.txt

link_down 1
cut_at=$(date +%s)
for _ in $(seq 900); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
kill -0 "$runner" 2>/dev/null && fail "the workers were still running 90 s after the cut"
wait "$runner"
took=$(($(date +%s) - cut_at))
link_up 1
read -r s0 s1 < cut.status
echo "link cut: the workers exited with $s0 and $s1, $took s after the cut (limit: timeout 3 s + 30 s)"
echo "  rank 0: $(grep error cut.0.err | tail -n 1)"
echo "  rank 1: $(grep error cut.1.err | tail -n 1)"
((s0 != 0 && s1 != 0)) || fail "a worker exited with 0 after the link was cut"
((took <= 33)) || fail "the workers took $took s to stop"
grep -q "rank 0: .*rank 1" cut.0.err || fail "rank 0 did not name rank 1"
grep -q "rank 1: .*rank 0" cut.1.err || fail "rank 1 did not name rank 0"
"$bin" sample -q --ckpt cut/last.safetensors --out s.npy -n 10 > /dev/null || fail "the last checkpoint does not load"

# The same cut while rank 0 works alone (a tiny U-Net's sample grid at 399 NFE, seconds) and rank 1
# waits for it through the store: its polls go unanswered, and it stops within the same bound.
train=(train -q --no-sample --threads 1 --seed 3 --config mnist --set data.image_size=14 --set data.n_train=500
       --set model.channels=8 --set 'model.channel_mult=[1,2]' --set 'model.attention=[7]'
       --set model.fourier_features=16 --set train.steps=1000000 --set train.batch=8 --set train.log_every=10
       --set train.sample_every=10 --set train.ckpt_every=1000000 --set sample.nfe=399)
dist grid --timeout 3 > grid.status &
runner=$!
for _ in $(seq 600); do grep -qs '"loss"' grid/train.jsonl && break; sleep 0.05; done
grep -qs '"loss"' grid/train.jsonl || fail "no logged step within 30 s"
link_down 1
cut_at=$(date +%s.%N)
for _ in $(seq 900); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
kill -0 "$runner" 2>/dev/null && fail "the workers were still running 90 s after the cut"
wait "$runner"
since() { /usr/bin/python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.${3:-0}f}')" "$1" "$2"; }
took=$(since "$(date +%s.%N)" "$cut_at")
link_up 1
read -r s0 s1 < grid.status
# When rank 1 wrote its error line (the last write to its stderr).
rank1=$(since "$(date -r grid.1.err +%s.%N)" "$cut_at" 1)
echo "link cut during rank 0's sample grid: the workers exited with $s0 and $s1, $took s after the cut" \
  "(rank 1 stopped waiting after $rank1 s)"
echo "  rank 0: $(grep error grid.0.err | tail -n 1)"
echo "  rank 1: $(grep error grid.1.err | tail -n 1)"
[[ -z $(ls grid/samples 2> /dev/null) ]] || echo "  (rank 0 finished the grid: $(ls grid/samples | tr '\n' ' '))"
((s0 != 0 && s1 != 0)) || fail "a worker exited with 0 after the link was cut"
((took <= 33)) || fail "the workers took $took s to stop"
grep -q "rank 1: waiting for rank 0's .* rank 0 did not answer" grid.1.err ||
  fail "rank 1 did not stop while waiting for rank 0"
grep -q "rank 0: .*rank 1" grid.0.err || fail "rank 0 did not name rank 1"

train=(train -q --no-sample --threads 1 --seed 3 --set train.steps=600 --set train.ckpt_every=200
       --set train.log_every=200)
"$bin" "${train[@]}" --nproc 2 --out straight > /dev/null 2> straight.err || fail "the uninterrupted run failed"
dist restarted --timeout 3 --max-restarts 2 > restarted.status &
runner=$!
for _ in $(seq 600); do [[ -f restarted/last.safetensors ]] && break; sleep 0.1; done
[[ -f restarted/last.safetensors ]] || fail "no checkpoint within 60 s"
link_down 1
sleep 8
link_up 1
for _ in $(seq 1200); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
kill -0 "$runner" 2>/dev/null && fail "the restarted run had not finished 120 s after the link came back"
wait "$runner"
read -r s0 s1 < restarted.status
echo "link cut for 8 s under --max-restarts 2: the workers' supervisors exited with $s0 and $s1"
grep -h "restart" restarted.0.err restarted.1.err | sed 's/^/  /'
[[ "$s0 $s1" == "0 0" ]] || fail "the restarted run did not finish"
grep -q '"event":"restart"' restarted/train.jsonl || fail "train.jsonl does not log the restart"
d=$(max_difference straight/last.safetensors restarted/last.safetensors "")
echo "largest difference over every tensor of last.safetensors from the uninterrupted run: $d"
[[ "$d" == "0.0" ]] || fail "the restarted run differs from the uninterrupted one by $d"
echo "netns_two_hosts ($part): ok"
