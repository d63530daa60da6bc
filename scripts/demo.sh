#!/usr/bin/env bash
# The README's first command: install what the build needs, build vswitch, and run its
# main job on a working default. Today that is `vswitch demo`: a two-tenant cloud switched
# in memory by the real pipeline (the AF_XDP demo on real netdevs replaces it with issue 5).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
exec cargo run --release -q -p dataplane --bin vswitch -- demo "$@"
