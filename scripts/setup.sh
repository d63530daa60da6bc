#!/usr/bin/env bash
# One-time / idempotent machine setup for building and testing vswitch.
#
# Safe to run on every `scripts/test.sh` invocation: when everything is
# already present it does nothing at all (no apt-get update, no network) and
# prints "setup: everything present".
#
# What it ensures:
#   * Debian packages needed by the build:
#       - clang               libclang for bindgen + BPF compiler (xsk-rs
#                             feature `use_cc_build` -> libxdp-sys; bench/build.rs
#                             compiles bench/bpf/*.bpf.c with `clang -target bpf`)
#       - linux-libc-dev      linux/bpf.h for bench/bpf (normally already there
#                             through libc6-dev; listed to say so)
#       - libelf-dev          libxdp/libbpf build (pulls zlib1g-dev)
#       - m4, make, pkg-config, gcc, zlib1g-dev
#                             libxdp/libbpf build (listed even though the
#                             base image has most of them, so this script
#                             is self-contained)
#       - g++                 C++ compiler for libfuzzer-sys (cargo fuzz)
#       - iproute2, ethtool   network-namespace tests
#       - iputils-ping        ping in scripts/demo-netns.sh (the demo on netdevs)
#       - python3-prometheus-client
#                             the official Prometheus text parser, which the
#                             metrics tests run over what `GET /metrics` serves
#     libpcap-dev is NOT needed with `use_cc_build`.
#   * rustfmt and clippy rustup components.
#   * cargo-fuzz (`cargo install cargo-fuzz --locked`; set CARGO_FUZZ_VERSION
#     to pin a version).
#
# Runs as root; when not root, uses sudo for apt-get if sudo exists.
set -euo pipefail

APT_PACKAGES=(
    clang
    linux-libc-dev  # linux/bpf.h for bench/bpf/*.bpf.c
    libelf-dev
    m4
    pkg-config
    make
    gcc
    g++
    zlib1g-dev
    iproute2
    ethtool
    iputils-ping  # `ping` in scripts/demo-netns.sh
    python3-prometheus-client  # strict parse of the metrics exposition (dataplane/tests/metrics_run.rs)
    tshark  # Wireshark CLI for tests/tests/wireshark.rs; noninteractive debconf keeps dumpcap non-setuid
)

did=()

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------

pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${APT_PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
else
    log "warning: dpkg-query not found (not Debian/Ubuntu?); skipping system packages: ${APT_PACKAGES[*]}"
fi

if ((${#missing[@]})); then
    if [[ "$(id -u)" == 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo -n)
    else
        die "missing packages (${missing[*]}) and not root and no sudo"
    fi
    log "installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Wait for a dpkg lock held by e.g. unattended-upgrades on fresh CI VMs
    # instead of failing immediately.
    apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${apt_opts[@]}" -qq update </dev/null
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${apt_opts[@]}" -qq -y --no-install-recommends install "${missing[@]}" </dev/null
    for p in "${missing[@]}"; do
        pkg_installed "$p" || die "package $p still not installed after apt-get install"
    done
    did+=("apt: ${missing[*]}")
fi

# --- Rust toolchain ------------------------------------------------------------

if ! command -v cargo >/dev/null 2>&1 && [[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ]]; then
    # shellcheck disable=SC1091
    . "${CARGO_HOME:-$HOME/.cargo}/env"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust via rustup (https://rustup.rs) first"

components=()
cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || components+=(clippy)
if ((${#components[@]})); then
    command -v rustup >/dev/null 2>&1 || die "need rust components (${components[*]}) but rustup not found"
    log "adding rustup components: ${components[*]}"
    rustup component add "${components[@]}" </dev/null
    did+=("rustup components: ${components[*]}")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    ver_args=()
    [[ -n "${CARGO_FUZZ_VERSION:-}" ]] && ver_args=(--version "$CARGO_FUZZ_VERSION")
    log "installing cargo-fuzz${CARGO_FUZZ_VERSION:+ $CARGO_FUZZ_VERSION} (cargo install --locked, ~1 min)"
    cargo install cargo-fuzz --locked "${ver_args[@]}" </dev/null
    cargo fuzz --version >/dev/null 2>&1 || die "cargo-fuzz installed but 'cargo fuzz --version' still fails (is ~/.cargo/bin on PATH?)"
    did+=("cargo-fuzz")
fi

if ((${#did[@]})); then
    summary=$(printf '%s; ' "${did[@]}")
    log "done (installed ${summary%; })"
else
    log "everything present"
fi
