#!/usr/bin/env bash
# THE test command for vswitch (used by CI via .ci/run). Works from any cwd,
# needs no stdin, stops at the first failing step.
#
# Steps:
#   1. scripts/setup.sh                 system packages, rustfmt/clippy, cargo-fuzz
#   2. cargo fmt --all -- --check       root workspace
#   3. cargo fmt --check                fuzz/ workspace (excluded from the root one)
#   4. cargo clippy --workspace --all-targets -- -D warnings
#   5. cargo check --all-targets        fuzz/ workspace, and the seed corpus
#                                       checked against its generator
#   6. cargo test --workspace           (the XDP fast path off: vswitch's default)
#   7. the tests that run `vswitch run` on real netdevs again, with the XDP fast
#      path on (VSWITCH_TEST_FASTPATH=1: `--fastpath`, and GRO on every test veth so
#      that it can receive redirected frames)
#   8. scripts/fuzz-smoke.sh            every fuzz target for FUZZ_SECONDS (20)
#
# Environment knobs:
#   SKIP_FUZZ=1   skip steps 3, 5 and 7 (quick local iteration only; CI must
#                 not set it)
#   FUZZ_*        passed through to scripts/fuzz-smoke.sh (see there)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
exec </dev/null

skip_fuzz="${SKIP_FUZZ:-0}"
[[ "$skip_fuzz" == 0 || "$skip_fuzz" == 1 ]] || { echo "test.sh: SKIP_FUZZ must be 0 or 1" >&2; exit 2; }

total=9
n=0
t_all=$SECONDS

# step DESCRIPTION CMD... : announce, run, time; exit with CMD's status on failure.
step() {
    local desc="$1"; shift
    n=$((n + 1))
    printf '\n==> [%d/%d] %s\n' "$n" "$total" "$desc"
    local t0=$SECONDS rc=0
    "$@" || rc=$?
    if ((rc != 0)); then
        printf '\n==> FAILED [%d/%d] %s (exit %d after %ds)\n' "$n" "$total" "$desc" "$rc" $((SECONDS - t0)) >&2
        exit "$rc"
    fi
    printf '==> ok [%d/%d] %s (%ds)\n' "$n" "$total" "$desc" $((SECONDS - t0))
}

skipped=0
skip() {
    n=$((n + 1)) skipped=$((skipped + 1))
    printf '\n==> [%d/%d] SKIPPED (SKIP_FUZZ=1): %s\n' "$n" "$total" "$1"
}

in_fuzz() {
    if [[ ! -f fuzz/Cargo.toml ]]; then
        echo "test.sh: fuzz/Cargo.toml missing (the fuzz workspace is part of the test suite)" >&2
        return 1
    fi
    (cd fuzz && exec "$@")
}

step "setup (scripts/setup.sh)" scripts/setup.sh

step "cargo fmt --all -- --check" cargo fmt --all -- --check

if ((skip_fuzz)); then skip "fuzz: cargo fmt --check"; else
    step "fuzz: cargo fmt --check" in_fuzz cargo fmt --check
fi

step "cargo clippy --workspace --all-targets -- -D warnings" \
    cargo clippy --workspace --all-targets -- -D warnings

if ((skip_fuzz)); then
    skip "fuzz: cargo check --all-targets"
    skip "fuzz: seed corpus matches its generator"
else
    step "fuzz: cargo check --all-targets" in_fuzz cargo check --all-targets
    step "fuzz: seed corpus matches its generator" in_fuzz cargo run -q --example gen_seeds -- --check
fi

step "cargo test --workspace" cargo test --workspace

fastpath_tests=()
for t in bad_input_run capture_run faults_run gre_run hardening_run kernel_vxlan_run \
    lifecycle_run metrics_run napi_run offload_run port_change_run run_netns; do
    fastpath_tests+=(--test "$t")
done
step "cargo test: vswitch run on netdevs again, XDP fast path on" \
    env VSWITCH_TEST_FASTPATH=1 cargo test -p dataplane "${fastpath_tests[@]}"

if ((skip_fuzz)); then skip "fuzz smoke (scripts/fuzz-smoke.sh)"; else
    step "fuzz smoke (scripts/fuzz-smoke.sh, ${FUZZ_SECONDS:-20}s per target)" scripts/fuzz-smoke.sh
fi

if ((skipped)); then
    printf '\n==> %d steps passed, %d SKIPPED, in %ds\n' $((total - skipped)) "$skipped" $((SECONDS - t_all))
else
    printf '\n==> all %d steps passed in %ds\n' "$total" $((SECONDS - t_all))
fi
