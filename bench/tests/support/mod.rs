//! What the wire harness's integration tests share: the binaries they run.

use std::path::PathBuf;
use std::process::Command;

/// `vswitch-bench`, as cargo built it for this test.
pub fn bench_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vswitch-bench"))
}

/// `vswitch`, next to `vswitch-bench` (cargo builds every binary of the workspace into
/// the same directory for `cargo test --workspace`); built here when a test runs alone
/// (`cargo test -p vswitch-bench` does not build the dataplane's binary).
#[allow(clippy::expect_used)]
pub fn vswitch_bin() -> PathBuf {
    let p = bench_bin()
        .parent()
        .map(|d| d.join("vswitch"))
        .unwrap_or_default();
    if !p.exists() {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-p", "dataplane", "--bin", "vswitch"])
            .status()
            .expect("cargo build vswitch");
        assert!(st.success(), "building vswitch failed");
    }
    p
}
