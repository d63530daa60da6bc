#!/usr/bin/env bash
# The issue-5 demo on real netdevs: two "compute nodes", each a network namespace running
# its own `vswitch run` (AF_XDP), each with two "VMs" (namespaces behind veth ports) on
# two tenant networks that use the same IP addresses, the nodes joined by VXLAN over an
# underlay veth pair. Pings across the nodes within each tenant, shows that the tenants
# cannot reach each other, shows the XDP fast path forwarding the established flows in
# the kernel (`vswitch ctl fastpath show`), prints `vswitch ctl fdb show` and `vswitch ctl
# stats` of both nodes, stops both switches and removes everything, also on error or
# Ctrl-C.
#
#   VMs a1, b1 (namespaces)                          VMs a2, b2 (namespaces)
#     a1 198.19.0.1 ─ vm-a ┐                        ┌ vm-a ─ a2 198.19.0.2
#     b1 198.19.0.1 ─ vm-b ┤ node1: vswitch run     │ node2: vswitch run
#                          │ ul0 198.18.0.1 ══ veth ══ ul0 198.18.0.2
#                          └ (VXLAN, UDP 4789)      └ vm-b ─ b2 198.19.0.2, 198.19.0.3
#   tenant-a: VNI 5001 (a1, a2)    tenant-b: VNI 5002 (b1, b2)
#
# Root only (network namespaces, AF_XDP). Environment:
#   VSWITCH_BIN   use this vswitch binary instead of building one (cargo build --release)
#   KEEP_LOGS=1   print the switches' logs at the end even when everything passed
# Exit status 0 when every check passed; 77 when not root; 1 otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== %s\n' "$*"; }
ok() { printf 'PASS: %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

if [[ "$(id -u)" != 0 ]]; then
    echo "demo-netns.sh: needs root (it creates network namespaces and opens AF_XDP sockets); run it as root, e.g. sudo $0" >&2
    exit 77
fi
for cmd in ip ethtool ping nsenter; do
    command -v "$cmd" >/dev/null 2>&1 || fail "'$cmd' not found (scripts/setup.sh installs iproute2, ethtool, iputils-ping)"
done

# --- names and the teardown --------------------------------------------------------

TAG="vsdemo-$$"
NODE1="$TAG-node1"
NODE2="$TAG-node2"
A1="$TAG-a1"
B1="$TAG-b1"
A2="$TAG-a2"
B2="$TAG-b2"
ALL_NS=("$A1" "$B1" "$A2" "$B2" "$NODE1" "$NODE2")
TMP="$(mktemp -d "/tmp/$TAG.XXXXXX")"
declare -A SWITCH_PID=()

stop_switch() { # node -> stops its vswitch with SIGTERM (SIGKILL after 10 s); status in $?
    local node=$1 pid=${SWITCH_PID[$1]:-}
    [[ -n "$pid" ]] || return 0
    unset "SWITCH_PID[$node]"
    kill -TERM "$pid" 2>/dev/null || return 0
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "demo-netns: vswitch on $node did not stop on SIGTERM, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid"
}

teardown() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    for node in "${!SWITCH_PID[@]}"; do
        stop_switch "$node"
    done
    if ((rc != 0)) || [[ "${KEEP_LOGS:-}" == 1 ]]; then
        for log in "$TMP"/*.log; do
            [[ -f "$log" ]] || continue
            printf '\n--- %s ---\n' "$(basename "$log")" >&2
            cat "$log" >&2
        done
    fi
    for ns in "${ALL_NS[@]}"; do
        [[ -e "/run/netns/$ns" ]] && ip netns del "$ns"
    done
    rm -rf "$TMP"
    if ((rc == 0)); then
        echo "demo-netns: torn down (namespaces $TAG-*, $TMP)"
    else
        echo "demo-netns: torn down after a failure or an interruption (exit $rc)" >&2
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- vswitch -----------------------------------------------------------------------

if [[ -n "${VSWITCH_BIN:-}" ]]; then
    BIN="$VSWITCH_BIN"
else
    say "building vswitch (cargo build --release)"
    cargo build --release -q -p dataplane --bin vswitch
    BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/vswitch"
fi
[[ -x "$BIN" ]] || fail "no vswitch binary at $BIN"

# The CPUs this process may use, as a list of ids: each switch's worker gets its own
# when there are two or more.
cpus=()
IFS=, read -ra ranges <<<"$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)"
for r in "${ranges[@]}"; do
    if [[ "$r" == *-* ]]; then
        for ((c = ${r%-*}; c <= ${r#*-}; c++)); do cpus+=("$c"); done
    else
        cpus+=("$r")
    fi
done
CORE1=${cpus[0]}
CORE2=${cpus[${#cpus[@]} - 1]}

# --- the topology --------------------------------------------------------------------

say "creating two compute nodes ($NODE1, $NODE2) and four VMs"
for ns in "${ALL_NS[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # Only the traffic of the demo: no IPv6 router/neighbour chatter.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done

# The underlay: one veth pair between the nodes. vswitch owns both ends (AF_XDP), so the
# nodes' kernels have no address on them; the VTEPs find each other by ARP.
ip -n "$NODE1" link add ul0 type veth peer name ul0 netns "$NODE2"
ip -n "$NODE1" link set ul0 up
ip -n "$NODE2" link set ul0 up

# vm NODE PORT VM MAC ADDR...: a VM namespace behind a veth port of a node.
vm() {
    local node=$1 port=$2 vm=$3 mac=$4
    shift 4
    ip -n "$node" link add "$port" type veth peer name eth0 netns "$vm"
    ip -n "$vm" link set eth0 address "$mac" mtu 1450 # underlay 1500 - VXLAN's 50
    for a in "$@"; do
        ip -n "$vm" addr add "$a" dev eth0
    done
    # A VM's TX checksum offload would hand vswitch partial TCP/UDP checksums.
    ip netns exec "$vm" ethtool -K eth0 tx off >/dev/null
    ip -n "$vm" link set eth0 up
    ip -n "$node" link set "$port" up
    # The XDP fast path redirects frames into the port, which a veth takes only when its
    # peer has a NAPI: GRO gives it one (set once the link is up).
    ip netns exec "$vm" ethtool -K eth0 gro on >/dev/null
}
MAC_A1=02:0a:00:00:00:01
MAC_B1=02:0b:00:00:00:01
MAC_A2=02:0a:00:00:00:02
MAC_B2=02:0b:00:00:00:02
vm "$NODE1" vm-a "$A1" "$MAC_A1" 198.19.0.1/24
vm "$NODE1" vm-b "$B1" "$MAC_B1" 198.19.0.1/24
vm "$NODE2" vm-a "$A2" "$MAC_A2" 198.19.0.2/24
vm "$NODE2" vm-b "$B2" "$MAC_B2" 198.19.0.2/24 198.19.0.3/24

# config NODE LOCAL_IP REMOTE_IP: the node's vswitch.toml.
config() {
    cat <<EOF
# $1: written by scripts/demo-netns.sh
[switch]
workers = 1
control_socket = "$TMP/$1.sock"
fastpath = true             # established unicast flows forwarded in the kernel (XDP)

[underlay]
port = "uplink"
ifname = "ul0"
local_ip = "$2/24"

[[network]]
name = "tenant-a"
segment = "vxlan"
id = 5001
remote_vteps = ["$3"]

[[network]]
name = "tenant-b"
segment = "vxlan"
id = 5002
remote_vteps = ["$3"]

[[port]]
name = "vm-a"
ifname = "vm-a"
mode = "access"
network = "tenant-a"

[[port]]
name = "vm-b"
ifname = "vm-b"
mode = "access"
network = "tenant-b"
EOF
}
config node1 198.18.0.1 198.18.0.2 >"$TMP/node1.toml"
config node2 198.18.0.2 198.18.0.1 >"$TMP/node2.toml"

ctl() { # node args...
    local node=$1
    shift
    "$BIN" ctl --socket "$TMP/$node.sock" "$@"
}

start_switch() { # node ns core
    local node=$1 ns=$2 core=$3
    # nsenter, not `ip netns exec`: the latter remounts /sys and hides bpffs.
    nsenter --net="/run/netns/$ns" -- "$BIN" run --config "$TMP/$node.toml" --cores "$core" \
        </dev/null >"$TMP/$node.log" 2>&1 &
    SWITCH_PID[$node]=$!
}
wait_up() { # node
    local node=$1 i
    for ((i = 0; i < 200; i++)); do
        ctl "$node" show >/dev/null 2>&1 && return 0
        kill -0 "${SWITCH_PID[$node]}" 2>/dev/null || fail "vswitch on $node exited: $(cat "$TMP/$node.log")"
        sleep 0.1
    done
    fail "vswitch on $node did not come up in 20 s"
}

say "starting vswitch on each node (worker on core $CORE1 and core $CORE2)"
start_switch node1 "$NODE1" "$CORE1"
start_switch node2 "$NODE2" "$CORE2"
wait_up node1
wait_up node2
grep -v "^libbpf: elf: skipping" "$TMP/node1.log" | sed "s/^/  node1: /"
grep -v "^libbpf: elf: skipping" "$TMP/node2.log" | sed "s/^/  node2: /"

# --- within each tenant, across the nodes ---------------------------------------------

# ping_ok NS DST WHAT: 3 echo replies within 10 s.
ping_ok() {
    local out
    if out=$(ip netns exec "$1" ping -n -c 3 -i 0.2 -w 10 "$2" 2>&1); then
        printf '%s\n' "$out" | grep -E 'packets transmitted|rtt' | sed 's/^/  /'
        ok "$3"
    else
        printf '%s\n' "$out" | sed 's/^/  /'
        fail "$3"
    fi
}
# ping_fails NS DST WHAT: not a single reply in 2 s.
ping_fails() {
    local out
    if out=$(ip netns exec "$1" ping -n -c 4 -i 0.2 -w 2 "$2" 2>&1); then
        printf '%s\n' "$out" | sed 's/^/  /'
        fail "$3"
    else
        printf '%s\n' "$out" | grep -E 'packets transmitted' | sed 's/^/  /'
        ok "$3"
    fi
}
# lladdr NS IP: the MAC the namespace's neighbour table holds for IP (empty if none).
lladdr() {
    ip -n "$1" neigh show "$2" dev eth0 | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'
}

say "tenant-a: VM a1 (node1, 198.19.0.1) pings VM a2 (node2, 198.19.0.2) over VXLAN 5001"
ping_ok "$A1" 198.19.0.2 "tenant-a: a1 (node1) -> a2 (node2) across the nodes"
say "tenant-b: VM b1 (node1, 198.19.0.1) pings VM b2 (node2, 198.19.0.2) over VXLAN 5002"
ping_ok "$B1" 198.19.0.2 "tenant-b: b1 (node1) -> b2 (node2) across the nodes"
say "and back: a2 -> a1, b2 -> b1"
ping_ok "$A2" 198.19.0.1 "tenant-a: a2 (node2) -> a1 (node1)"
ping_ok "$B2" 198.19.0.1 "tenant-b: b2 (node2) -> b1 (node1)"

# --- isolation ------------------------------------------------------------------------

say "isolation: the same address 198.19.0.2 is a2 for tenant-a and b2 for tenant-b"
mac=$(lladdr "$A1" 198.19.0.2)
echo "  a1's neighbour table: 198.19.0.2 lladdr ${mac:-none} (a2 is $MAC_A2, b2 is $MAC_B2)"
[[ "$mac" == "$MAC_A2" ]] || fail "a1 resolved 198.19.0.2 to ${mac:-nothing}, not to a2 ($MAC_A2)"
ok "a1 reached tenant-a's 198.19.0.2 (a2's MAC), never tenant-b's"
mac=$(lladdr "$B1" 198.19.0.2)
echo "  b1's neighbour table: 198.19.0.2 lladdr ${mac:-none} (b2 is $MAC_B2, a2 is $MAC_A2)"
[[ "$mac" == "$MAC_B2" ]] || fail "b1 resolved 198.19.0.2 to ${mac:-nothing}, not to b2 ($MAC_B2)"
ok "b1 reached tenant-b's 198.19.0.2 (b2's MAC), never tenant-a's"

say "isolation: 198.19.0.3 exists only in tenant-b (on b2)"
ping_ok "$B1" 198.19.0.3 "tenant-b: b1 (node1) reaches 198.19.0.3 on b2 (node2)"
ping_fails "$A1" 198.19.0.3 "tenant-a: a1 (node1) cannot reach tenant-b's 198.19.0.3 (other node)"
ping_fails "$A2" 198.19.0.3 "tenant-a: a2 (node2) cannot reach tenant-b's 198.19.0.3 (same node)"
mac=$(lladdr "$A1" 198.19.0.3)
[[ -z "$mac" ]] || fail "a1 resolved tenant-b's 198.19.0.3 to $mac"
ok "a1 has no MAC for 198.19.0.3: its ARP requests never left tenant-a"

# --- the XDP fast path -------------------------------------------------------------------

say "the XDP fast path: a1 sends 200 pings to a2; once the workers have seen a flow, the kernel forwards it"
ip netns exec "$A1" ping -n -q -c 200 -i 0.005 -w 10 198.19.0.2 | grep -E 'packets transmitted' | sed 's/^/  /'
for node in node1 node2; do
    say "$node: vswitch ctl fastpath show"
    ctl "$node" fastpath show
    hits=$(ctl "$node" fastpath show | sed -n 's/^fast path: hits \([0-9]*\),.*/\1/p')
    [[ "${hits:-0}" -gt 0 ]] || fail "$node: the fast path forwarded nothing"
    ok "$node: ${hits} frames encapsulated, decapsulated and forwarded by the XDP program"
done

# --- what the switches saw ---------------------------------------------------------------

for node in node1 node2; do
    say "$node: vswitch ctl fdb show"
    ctl "$node" fdb show
    say "$node: vswitch ctl stats"
    ctl "$node" stats
done

# --- stop -------------------------------------------------------------------------------

say "stopping both switches (SIGTERM)"
for node in node1 node2; do
    if stop_switch "$node"; then
        ok "vswitch on $node stopped cleanly"
    else
        fail "vswitch on $node exited with status $?"
    fi
    for port in ul0 vm-a vm-b; do
        ns=$([[ $node == node1 ]] && echo "$NODE1" || echo "$NODE2")
        if ip -n "$ns" -d link show dev "$port" | grep -q xdp; then
            fail "an XDP program is left on $node's $port"
        fi
    done
done
ok "no XDP program left behind"
echo
echo "demo-netns: all checks passed"
