//! CI's smoke run of `vswitch-bench wire`: a few seconds per switch (vswitch, its
//! forward-only `null` mode, the Linux bridge; the bare XDP redirect on l2) on the l2 and
//! vxlan-encap profiles, at a rate
//! every switch carries without loss, with `--check`: the harness works end to end and
//! its counters agree (generated = forwarded + dropped, per sink and per the switch's own
//! counters). Not a performance test: the rate is fixed and low.
//!
//! Needs root (namespaces, XDP); says so loudly and passes otherwise. Finds `vswitch`
//! next to `vswitch-bench` (cargo builds every binary of the workspace into the same
//! directory for `cargo test --workspace`).

#![allow(clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;

use support::{bench_bin, vswitch_bin};

fn smoke(switches: &str, profile: &str) {
    let vswitch = vswitch_bin();
    assert!(vswitch.exists(), "{} missing", vswitch.display());
    let out = Command::new(bench_bin())
        .args([
            "wire",
            "--switch",
            switches,
            "--profile",
            profile,
            "--size",
            "64",
            "--flows",
            "16",
            "--seconds",
            "2",
            "--reps",
            "1",
            "--rate",
            "0.02",
            "--check",
            "--quiet",
            "--vswitch",
        ])
        .arg(&vswitch)
        .output()
        .expect("running vswitch-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "vswitch-bench wire failed: {}",
        out.status
    );
    assert!(stdout.contains("check: PASS"), "no check line");
    for sw in switches.split(',') {
        // Rows carry the report's name.
        let row = match sw {
            "vswitch-fast" => "vswitch (XDP fast path)",
            other => other,
        };
        assert!(stdout.contains(row), "no row for {sw}");
    }
    assert!(stdout.contains("ceiling"), "no ceiling line");
}

/// The harness's namespaces are `vsb-ROLE-PID-N`; this binary runs one test, so after a
/// run none may be left.
fn assert_no_namespaces_left() {
    let ns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    let left = String::from_utf8_lossy(&ns.stdout);
    let ours: Vec<&str> = left.lines().filter(|l| l.starts_with("vsb-")).collect();
    assert!(ours.is_empty(), "namespaces left behind: {ours:?}");
}

/// One test (run sequentially, so the namespace check sees only this run's).
#[test]
fn wire_smoke() {
    if !vswitch_tests::netns::root_or_skip("wire_smoke") {
        return;
    }
    smoke("vswitch,vswitch-fast,null,kernel-bridge,xdp-redirect", "l2");
    assert_no_namespaces_left();
    smoke("vswitch,vswitch-fast,kernel-bridge", "vxlan-encap");
    assert_no_namespaces_left();
}
