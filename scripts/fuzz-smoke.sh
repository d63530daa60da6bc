#!/usr/bin/env bash
# Fuzz smoke test: run every cargo-fuzz target briefly; fail on any crash,
# leak, timeout or OOM.
#
# Environment knobs:
#   FUZZ_DIR         cargo-fuzz project dir (default: <repo>/fuzz). It is a
#                    separate cargo workspace, excluded from the root one.
#   FUZZ_SECONDS     fuzzing time per target (default 20). 0 = only replay the
#                    seed corpus once (regression check, no mutation).
#   FUZZ_TIMEOUT     per-input timeout in seconds (default 10) -> a hang is
#                    reported as a failure instead of stalling CI.
#   FUZZ_TARGETS     space-separated subset of targets (default: all listed
#                    by `cargo fuzz list`).
#   FUZZ_BUILD_ARGS  extra `cargo fuzz build/run` flags (default none).
#                    Note cargo-fuzz 0.13 already builds optimised WITH debug
#                    assertions + overflow checks unless -O is given.
#   FUZZ_ARGS        extra libFuzzer flags appended after ours.
#   FUZZ_RUNS        run this many executions per target instead of FUZZ_SECONDS
#                    (the campaign: scripts/fuzz-campaign.sh).
#   FUZZ_KEEP        1 = merge what each run found (inputs that add coverage) into
#                    the kept corpus, corpus-campaign/<target> (committed; read as
#                    extra seeds by every run).
#   FUZZ_TOOLCHAIN   unset (default): use the active toolchain (stable) with
#                    RUSTC_BOOTSTRAP=1. Set to e.g. "nightly" to run
#                    `cargo +nightly fuzz` instead.
#
# Toolchain choice: cargo-fuzz passes nightly-only -Z flags
# (-Zsanitizer=address, sancov options). Verified on rustc 1.95 stable with
# cargo-fuzz 0.13.2: RUSTC_BOOTSTRAP=1 makes those work on stable, with the
# default ASan sanitizer (no `-s none` or other flags needed). We use that
# route ALWAYS, even where a nightly is installed, so a dev machine and a
# fresh stable-only CI machine fuzz with the same compiler that builds and
# tests the rest of the workspace.
#
# Corpus handling: the committed seeds in corpus/<target> are never written
# to. Each run gets a fresh temp dir as libFuzzer's FIRST corpus dir (the one
# new inputs are written to) and the seed dir as a read-only second dir.
# Crash reproducers land in <FUZZ_DIR>/artifacts/<target>/ (gitignored).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="${FUZZ_DIR:-$repo_root/fuzz}"
seconds="${FUZZ_SECONDS:-20}"
timeout_s="${FUZZ_TIMEOUT:-10}"
read -r -a build_args <<<"${FUZZ_BUILD_ARGS:-}"
read -r -a extra_args <<<"${FUZZ_ARGS:-}"

die() { printf 'fuzz-smoke: error: %s\n' "$*" >&2; exit 1; }

[[ "$seconds" =~ ^[0-9]+$ ]] || die "FUZZ_SECONDS must be a non-negative integer, got '$seconds'"
[[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_TIMEOUT must be a positive integer, got '$timeout_s'"
[[ -f "$fuzz_dir/Cargo.toml" ]] || die "no cargo-fuzz project at $fuzz_dir (missing Cargo.toml)"
cd "$fuzz_dir"

if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
    fuzz() { cargo "+$FUZZ_TOOLCHAIN" fuzz "$@"; }
else
    export RUSTC_BOOTSTRAP=1
    fuzz() { cargo fuzz "$@"; }
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    listing="$(fuzz list </dev/null)" || die "'cargo fuzz list' failed in $fuzz_dir"
    mapfile -t targets < <(printf '%s' "$listing" | sed '/^[[:space:]]*$/d')
fi
((${#targets[@]})) || die "no fuzz targets found in $fuzz_dir (cargo fuzz list is empty)"

echo "fuzz-smoke: ${#targets[@]} target(s) in $fuzz_dir: ${targets[*]}"
echo "fuzz-smoke: building: cargo fuzz build${build_args[*]:+ ${build_args[*]}}"
fuzz build "${build_args[@]}" </dev/null

work="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ -n "${FUZZ_RUNS:-}" ]]; then
    [[ "$FUZZ_RUNS" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_RUNS must be a positive integer, got '$FUZZ_RUNS'"
    mode_args=("-runs=$FUZZ_RUNS")
elif ((seconds > 0)); then
    mode_args=("-max_total_time=$seconds")
else
    mode_args=("-runs=0") # just execute the seed corpus
fi

summary=()
failed=()
for t in "${targets[@]}"; do
    out="$work/$t.corpus"
    log="$work/$t.log"
    mkdir -p "$out"
    dirs=("$out")
    [[ -d "corpus/$t" ]] && dirs+=("corpus/$t")
    [[ -d "corpus-campaign/$t" ]] && dirs+=("corpus-campaign/$t")
    nseeds=0
    for d in "corpus/$t" "corpus-campaign/$t"; do
        [[ -d "$d" ]] && nseeds=$((nseeds + $(find "$d" -type f | wc -l)))
    done

    echo "fuzz-smoke: running $t (${mode_args[*]}, seeds: $nseeds)"
    rc=0
    fuzz run "${build_args[@]}" "$t" "${dirs[@]}" -- \
        "${mode_args[@]}" "-timeout=$timeout_s" -print_final_stats=1 \
        "${extra_args[@]}" >"$log" 2>&1 </dev/null || rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    [[ -n "$execs" ]] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n1)
    cov=$(grep -Eo '^#[0-9]+[[:space:]]+(DONE|INITED).*' "$log" | tail -n1 | grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || true)
    if ((rc == 0)) && [[ "${FUZZ_KEEP:-0}" == 1 ]]; then
        mkdir -p "corpus-campaign/$t"
        fuzz run "${build_args[@]}" "$t" "corpus-campaign/$t" "$out" -- -merge=1 \
            >"$log.merge" 2>&1 </dev/null || die "merging the corpus of $t failed: $(tail -n3 "$log.merge")"
        kept=$(find "corpus-campaign/$t" -type f | wc -l)
        echo "fuzz-smoke: $t: kept corpus now $kept input(s) in corpus-campaign/$t"
    fi
    if ((rc == 0)); then
        summary+=("$(printf 'PASS  %-32s execs=%-10s %s' "$t" "${execs:-?}" "$cov")")
    else
        summary+=("$(printf 'FAIL  %-32s exit=%-3s execs=%s' "$t" "$rc" "${execs:-?}")")
        failed+=("$t")
        echo "fuzz-smoke: $t FAILED (exit $rc); log without progress lines:" >&2
        grep -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)[[:space:]]' "$log" >&2 || true
        echo "fuzz-smoke: reproducer(s) (if any) in $fuzz_dir/artifacts/$t/; replay with:" >&2
        if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
            echo "  cd $fuzz_dir && cargo +$FUZZ_TOOLCHAIN fuzz run $t artifacts/$t/<file>" >&2
        else
            echo "  cd $fuzz_dir && RUSTC_BOOTSTRAP=1 cargo fuzz run $t artifacts/$t/<file>" >&2
        fi
    fi
done

echo "fuzz-smoke: summary"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
    die "${#failed[@]} target(s) failed: ${failed[*]}"
fi
echo "fuzz-smoke: all ${#targets[@]} target(s) passed"
