//! The README's demo on real netdevs, `scripts/demo-netns.sh`, run as CI runs it so that
//! it cannot rot: its exit status, the key lines it prints, and nothing left behind
//! (namespaces, switch processes).
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//! The script is given this build's `vswitch` (`VSWITCH_BIN`), so it builds nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};

use vswitch_tests::netns::root_or_skip;

#[test]
fn demo_netns_script_passes() {
    if !root_or_skip("demo_netns_script_passes") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo-netns.sh");
    let out = Command::new("timeout")
        .arg("-s")
        .arg("TERM")
        .arg("120")
        .arg(&script)
        .env("VSWITCH_BIN", env!("CARGO_BIN_EXE_vswitch"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(out.status.success(), "demo-netns.sh failed: {}", out.status);
    for line in [
        "PASS: tenant-a: a1 (node1) -> a2 (node2) across the nodes",
        "PASS: tenant-b: b1 (node1) -> b2 (node2) across the nodes",
        "PASS: tenant-a: a2 (node2) -> a1 (node1)",
        "PASS: tenant-b: b2 (node2) -> b1 (node1)",
        "PASS: a1 reached tenant-a's 198.19.0.2 (a2's MAC), never tenant-b's",
        "PASS: b1 reached tenant-b's 198.19.0.2 (b2's MAC), never tenant-a's",
        "PASS: tenant-b: b1 (node1) reaches 198.19.0.3 on b2 (node2)",
        "PASS: tenant-a: a1 (node1) cannot reach tenant-b's 198.19.0.3 (other node)",
        "PASS: tenant-a: a2 (node2) cannot reach tenant-b's 198.19.0.3 (same node)",
        "== node1: vswitch ctl fdb show",
        "== node2: vswitch ctl stats",
        "vtep:198.18.0.2",
        "vtep:198.18.0.1",
        "PASS: vswitch on node1 stopped cleanly",
        "PASS: vswitch on node2 stopped cleanly",
        "PASS: no XDP program left behind",
        "demo-netns: all checks passed",
        "demo-netns: torn down",
    ] {
        assert!(
            stdout.contains(line),
            "missing from the demo's output: {line:?}"
        );
    }
    // The XDP fast path forwarded the established flows on both nodes.
    for node in ["node1", "node2"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("PASS: {node}: "))
                    && l.ends_with(
                        "frames encapsulated, decapsulated and forwarded by the XDP program"
                    )),
            "no fast path PASS line for {node}"
        );
    }
    assert!(!stdout.contains("FAIL") && !stderr.contains("FAIL"));
    // Both switches ran on AF_XDP in native mode.
    assert_eq!(
        stdout.matches("AF_XDP, XDP native mode").count(),
        6,
        "three ports per node"
    );
    // Nothing left: no namespace of the demo, no switch process of it.
    let netns = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("vsdemo-"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let tag = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo-netns: torn down (namespaces "))
        .and_then(|r| r.split('*').next())
        .expect("the teardown line names the namespaces");
    assert!(
        !netns.iter().any(|n| n.starts_with(tag)),
        "namespaces left behind: {netns:?}"
    );
    // The switches' command lines name the demo's temporary directory `/tmp/TAG.XXXXXX`.
    let tmp = format!("/{}.", tag.trim_end_matches('-'));
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&tmp))
        .collect();
    assert!(
        left.is_empty(),
        "processes of the demo left running: {left:?}"
    );
}
