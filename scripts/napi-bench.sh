#!/usr/bin/env bash
# Forwarding rate between two veth ports, with and without NAPI busy polling, and the
# Linux bridge on the same rig, for issue 5's comparison.
#
#   gen ns: g0 ==veth== p1 [switch ns: vswitch or br0] p2 ==veth== s0 :sink ns
#
# The generator (examples/xsk_gen.rs, AF_XDP copy mode) runs on core GEN_CORE; the
# switch's worker (or, for the bridge, the RPS target of p1) on core SW_CORE. Frames
# are 60-byte UDP to a MAC that is not s0's (a static FDB entry on p2; the bridge gets
# the same as a static fdb entry), so the sink drops them early; the rate is s0's
# rx_packets per second (veth counts a frame as received by the peer in veth_xmit).
#
# usage: scripts/napi-bench.sh MODE [SECONDS]
#   MODE: busy (napi_busy_poll = true), nobusy (false), bridge
# env: USECS (napi_busy_poll_usecs, default 100), GEN_CORE (0), SW_CORE (1),
#      TARGET (cargo target dir, default target),
#      RT=1: run the generator and vswitch as SCHED_FIFO 1 (`chrt -f 1`), so that other
#      load on the machine (builds) cannot take their cores from them; the bridge's
#      forwarding runs in softirq context, which no task preempts, so RT=1 is the fair
#      comparison on a machine that is not idle.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODE=${1:?usage: napi-bench.sh busy|nobusy|bridge [SECONDS]}
SECS=${2:-10}
USECS=${USECS:-100}
GEN_CORE=${GEN_CORE:-0}
SW_CORE=${SW_CORE:-1}
TARGET=${TARGET:-target}
RTCMD=()
[[ "${RT:-0}" == 1 ]] && RTCMD=(chrt -f 1)
BIN="$TARGET/release/vswitch"
GEN="$TARGET/release/examples/xsk_gen"
[[ -x "$BIN" && -x "$GEN" ]] || {
    echo "build first: cargo build --release -p dataplane --bin vswitch --example xsk_gen" >&2
    exit 2
}
[[ "$(id -u)" == 0 ]] || { echo "needs root" >&2; exit 77; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

TAG="nb-$$"
G="$TAG-gen" S="$TAG-sw" K="$TAG-sink"
TMP=$(mktemp -d "/tmp/$TAG.XXXXXX")
SWPID=""
cleanup() {
    [[ -n "$SWPID" ]] && kill -TERM "$SWPID" 2>/dev/null && wait "$SWPID" 2>/dev/null || true
    for n in "$G" "$S" "$K"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
for n in "$G" "$S" "$K"; do ip netns add "$n"; done
ip -n "$S" link add p1 type veth peer name g0 netns "$G"
ip -n "$S" link add p2 type veth peer name s0 netns "$K"
ip -n "$G" link set g0 address 02:00:00:00:00:01
ip -n "$K" link set s0 address 02:00:00:00:00:02
for d in p1 p2; do ip -n "$S" link set "$d" up; done
ip -n "$G" link set g0 up
ip -n "$K" link set s0 up
ip -n "$G" link set lo up

case "$MODE" in
busy | nobusy)
    nb=true
    [[ "$MODE" == nobusy ]] && nb=false
    cat >"$TMP/vswitch.toml" <<EOF
[switch]
workers = 1
control_socket = "$TMP/ctl.sock"
napi_busy_poll = $nb
napi_busy_poll_usecs = $USECS

[[network]]
name = "net"
segment = "local"

[[port]]
name = "p1"
ifname = "p1"
mode = "access"
network = "net"

[[port]]
name = "p2"
ifname = "p2"
mode = "access"
network = "net"

[[fdb]]
network = "net"
mac = "02:00:00:00:00:ee"
port = "p2"
EOF
    nsenter --net="/run/netns/$S" "${RTCMD[@]}" "$BIN" run --config "$TMP/vswitch.toml" --cores "$SW_CORE" \
        >"$TMP/vswitch.log" 2>&1 &
    SWPID=$!
    sleep 2
    ;;
bridge)
    ip -n "$S" link add br0 type bridge
    ip -n "$S" link set p1 master br0
    ip -n "$S" link set p2 master br0
    ip -n "$S" link set br0 up
    bridge -n "$S" fdb add 02:00:00:00:00:ee dev p2 master static
    # p1 has no NAPI: its frames go through netif_rx; RPS puts that backlog (the
    # bridge's whole forwarding path) on the switch core.
    mask=$(printf '%x' $((1 << SW_CORE)))
    ip netns exec "$S" sh -c "echo $mask > /sys/class/net/p1/queues/rx-0/rps_cpus"
    sleep 1
    ;;
*)
    echo "unknown mode $MODE" >&2
    exit 2
    ;;
esac

rx() { ip netns exec "$K" cat /sys/class/net/s0/statistics/rx_packets; }
nsenter --net="/run/netns/$G" "${RTCMD[@]}" "$GEN" g0 02:00:00:00:00:01 02:00:00:00:00:ee $((SECS + 3)) "$GEN_CORE" \
    >"$TMP/gen.log" 2>&1 &
GENPID=$!
sleep 2
r0=$(rx)
t0=$(date +%s.%N)
softirq0=$(grep NET_RX /proc/softirqs)
sleep "$SECS"
r1=$(rx)
t1=$(date +%s.%N)
softirq1=$(grep NET_RX /proc/softirqs)
wait "$GENPID" || true
rate=$(echo "($r1 - $r0) / ($t1 - $t0) / 1000000" | bc -l)
printf '%s usecs=%s rt=%s: %.3f Mpps forwarded (s0 rx %d frames in %.1f s)\n' \
    "$MODE" "$USECS" "${RT:-0}" "$rate" $((r1 - r0)) "$(echo "$t1 - $t0" | bc -l)"
echo "generator: $(tail -1 "$TMP/gen.log")"
echo "NET_RX softirqs before: $softirq0"
echo "NET_RX softirqs after:  $softirq1"
if [[ "$MODE" != bridge ]]; then
    ip netns exec "$S" grep -A1 '^TcpExt' /proc/net/netstat |
        awk 'NR==1{for(i=1;i<=NF;i++)h[i]=$i} NR==2{for(i=1;i<=NF;i++) if(h[i]~/BusyPoll/) print h[i], $i}'
    nsenter --net="/run/netns/$S" "$BIN" ctl --socket "$TMP/ctl.sock" stats 2>/dev/null | head -30 || true
    kill -TERM "$SWPID"
    wait "$SWPID" || true
    SWPID=""
    echo "--- vswitch log"
    cat "$TMP/vswitch.log"
fi
