# Sourced by the multi-host fault tests: hosts on a real network path on this machine. Each host is a network
# namespace with one interface, eth0, at 10.213.0.(i+1)/24 (a private test subnet that exists only inside these
# namespaces). Its veth pair leads into a wire namespace, where scorediff_wire (tests/netns/wire.cpp) joins the
# hosts as a hub and adds delay, loss or a rate limit: this kernel has no netem (see wire.cpp). Offloads are off
# on every veth so that frames are Ethernet-sized, as on a real link.
#   source netns.sh NAME SCOREDIFF WIRE     (then netns_hosts N; netns_wire [wire options])
# Needs root. Where namespaces cannot be made, the test is skipped (exit 77) with the reason. Everything it
# made (namespaces, veths, processes inside them) is removed on exit, also when the test fails.
set -euo pipefail
scripts=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
name=$1
bin=$(realpath "$2")
wire_bin=$(realpath "$3")
prefix="sd$$"  # namespace and veth names of this test only (ctest runs tests side by side)
hosts=0
wire_pid=""
dir=$(mktemp -d)
cd "$dir"

skip() { echo "$name: skipped: $*"; exit 77; }
fail() {
  echo "$name: $*" >&2
  for f in "$dir"/*.err "$dir"/*.txt; do
    [[ -f "$f" ]] && { echo "--- $(basename "$f"):" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

netns_cleanup() {
  local ns
  [[ -z "$wire_pid" ]] || { kill -9 "$wire_pid" 2>/dev/null; wait "$wire_pid" 2>/dev/null; } || true
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}(w|h[0-9]+|probe)$" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  local i  # veths left in this namespace by a failure half-way through netns_hosts
  for ((i = 0; i < hosts; ++i)); do ip link del "${prefix}h$i" 2>/dev/null || ip link del "${prefix}p$i" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap netns_cleanup EXIT

[[ $(id -u) -eq 0 ]] || skip "needs root to create network namespaces"
command -v ip > /dev/null || skip "no 'ip' (Debian package iproute2)"
command -v ethtool > /dev/null || skip "no 'ethtool' (Debian package ethtool; scripts/setup.sh installs it)"
ip netns add "${prefix}probe" 2> probe.err || skip "cannot create a network namespace: $(head -n 1 probe.err)"
ip netns del "${prefix}probe"

host_addr() { echo "10.213.0.$(($1 + 1))"; }

# netns_hosts N: N hosts joined by the wire namespace (no wire program yet: start one with netns_wire).
netns_hosts() {
  hosts=$1
  ip netns add "${prefix}w"
  ip -n "${prefix}w" link set lo up
  local i
  for ((i = 0; i < hosts; ++i)); do
    local ns="${prefix}h$i"
    ip netns add "$ns"
    ip link add "${prefix}h$i" type veth peer name "${prefix}p$i"
    ip link set "${prefix}h$i" netns "$ns"
    ip link set "${prefix}p$i" netns "${prefix}w"
    ip -n "$ns" link set "${prefix}h$i" name eth0
    ip -n "$ns" addr add "$(host_addr "$i")/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip -n "${prefix}w" link set "${prefix}p$i" up
    ip netns exec "$ns" ethtool -K eth0 tx off rx off tso off gso off gro off > /dev/null 2>&1 || true
    ip netns exec "${prefix}w" ethtool -K "${prefix}p$i" tx off rx off tso off gso off gro off > /dev/null 2>&1 || true
  done
}

# netns_wire [--delay-ms D] [--loss P] [--rate-mbit R]: (re)starts the wire with these faults.
netns_wire() {
  [[ -z "$wire_pid" ]] || { kill "$wire_pid" 2>/dev/null || true; wait "$wire_pid" 2>/dev/null || true; }
  local ports=() i
  for ((i = 0; i < hosts; ++i)); do ports+=("${prefix}p$i"); done
  ip netns exec "${prefix}w" "$wire_bin" --seed 7 "$@" "${ports[@]}" 2>> wire.err &
  wire_pid=$!
  sleep 0.2
  kill -0 "$wire_pid" 2>/dev/null || fail "the wire did not start"
}

# link_down I / link_up I: cut host I off the wire and connect it again (its veth in the wire namespace).
link_down() { ip -n "${prefix}w" link set "${prefix}p$1" down; }
link_up() { ip -n "${prefix}w" link set "${prefix}p$1" up; }

# on_host I CMD...: runs CMD in host I, with Gloo bound to its eth0.
on_host() {
  local i=$1
  shift
  ip netns exec "${prefix}h$i" env GLOO_SOCKET_IFNAME=eth0 "$@"
}

# The largest absolute difference between the tensors of two checkpoints whose names start with PREFIX.
max_difference() { /usr/bin/python3 "$scripts/max_difference.py" "$@"; }
