#!/usr/bin/env bash
# The README's first command: install what the build needs, build vswitch, and run its
# main job on a working default:
#   1. `vswitch demo`: a two-tenant cloud switched in memory by the real pipeline, frame
#      by frame (no privileges needed);
#   2. as root, scripts/demo-netns.sh: the same kind of cloud on real netdevs, two compute
#      nodes (network namespaces) each running `vswitch run` on AF_XDP ports, joined by
#      VXLAN over an underlay veth, torn down at the end (even when interrupted).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
cargo build --release -q -p dataplane --bin vswitch
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/vswitch"

printf '==== 1/2: vswitch demo (in memory, through the real pipeline)\n\n'
"$BIN" demo "$@"

printf '\n==== 2/2: scripts/demo-netns.sh (real netdevs: namespaces, veth, AF_XDP, VXLAN)\n\n'
if [[ "$(id -u)" != 0 ]]; then
    echo "demo: skipped the demo on real netdevs: it needs root (it creates network namespaces"
    echo "      and opens AF_XDP sockets). Run scripts/demo.sh (or scripts/demo-netns.sh) as root."
    exit 0
fi
VSWITCH_BIN="$BIN" exec scripts/demo-netns.sh
