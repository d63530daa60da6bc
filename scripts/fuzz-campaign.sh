#!/usr/bin/env bash
# The fuzzing campaign: every cargo-fuzz target for FUZZ_RUNS executions (default
# 10 million) from its seeds and the kept corpus, failing on any finding; what the runs
# find that adds coverage is merged into fuzz/corpus-campaign/<target>, which is
# committed and replayed as extra seeds by every later run (CI's smoke run included).
# The summary (executions, coverage) is what the README records.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FUZZ_RUNS="${FUZZ_RUNS:-10000000}" FUZZ_KEEP=1 exec "$here/fuzz-smoke.sh"
