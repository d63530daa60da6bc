//! The packaging files agree with each other and with the binary: the unit runs the
//! path the .deb installs with the configuration it installs, that configuration is
//! valid, and the unit passes `systemd-analyze verify` where systemd is installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dataplane::config::{Config, DEFAULT_CONTROL_SOCKET};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging")
}

fn unit() -> String {
    std::fs::read_to_string(dir().join("vswitch.service")).unwrap()
}

/// `[package.metadata.deb]` of dataplane/Cargo.toml.
fn deb() -> toml::Table {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    t["package"]["metadata"]["deb"].as_table().unwrap().clone()
}

#[test]
fn unit_runs_what_the_package_installs() {
    let unit = unit();
    let deb = deb();
    let assets: Vec<(String, String)> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            (
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let installed = |from: &str| {
        assets
            .iter()
            .find(|(f, _)| f == from)
            .map(|(_, to)| format!("/{to}"))
            .unwrap_or_else(|| panic!("{from} is not an asset: {assets:?}"))
    };
    let bin = installed("target/release/vswitch");
    let conf = installed("packaging/vswitch.toml");
    assert_eq!(bin, "/usr/bin/");
    assert_eq!(conf, "/etc/vswitch/vswitch.toml");
    assert!(
        unit.lines()
            .any(|l| l == format!("ExecStart={bin}vswitch run --config {conf}")),
        "{unit}"
    );
    assert!(deb["conf-files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_str() == Some(conf.as_str())));
    for line in [
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "LimitMEMLOCK=infinity",
        "RuntimeDirectory=vswitch",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line:?} in\n{unit}");
    }
    let caps = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .unwrap();
    for cap in [
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_BPF",
        "CAP_SYS_ADMIN",
        "CAP_IPC_LOCK",
        "CAP_SYS_NICE",
    ] {
        assert!(caps.split(' ').any(|c| c == cap), "{cap} missing: {caps}");
    }
    // The runtime directory is the control socket's.
    assert!(DEFAULT_CONTROL_SOCKET.starts_with("/run/vswitch/"));
}

#[test]
fn shipped_configuration_is_valid_and_uncommented_metrics_are_too() {
    let path = dir().join("vswitch.toml");
    let c = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.switch.control_socket,
        PathBuf::from(DEFAULT_CONTROL_SOCKET)
    );
    assert_eq!(c.metrics.listen, None, "metrics are off unless configured");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("# [metrics]\n# listen", "[metrics]\nlisten");
    let c = Config::from_str(&text, "vswitch.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9417".parse().unwrap()));
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd_analyze_verify_accepts_the_unit: no systemd-analyze");
        return;
    };
    assert!(out.status.success());
    // Verify checks that ExecStart exists: point it at the binary under test.
    let tmp = std::env::temp_dir().join(format!("vswitch-unit-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let path = tmp.join("vswitch.service");
    std::fs::write(
        &path,
        unit().replace("/usr/bin/vswitch", env!("CARGO_BIN_EXE_vswitch")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Warnings do not fail verify; they fail this test.
    assert!(!err.contains("vswitch.service"), "{err}");
}
