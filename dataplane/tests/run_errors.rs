//! `vswitch run`'s start-up refusals, in a namespace of their own (its `lo` is the port,
//! so that nothing can ever attach to the root namespace): without the privileges
//! AF_XDP needs (run as `nobody`), and with a locked-memory limit too small for the
//! UMEM (a soft `RLIMIT_MEMLOCK` of 64 KiB and no CAP_IPC_LOCK), it says what is
//! missing and exits non-zero, leaving nothing attached.
//!
//! Needs root (to drop privileges with `setpriv`); otherwise it prints
//! `SKIPPED: needs root` and passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use vswitch_tests::netns::{root_or_skip, NetNs};

const PREFIX: &str = "vsw-err";

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("vswitch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[switch]\ncontrol_socket = \"{}\"\n\n[[network]]\nname = \"n\"\nsegment = \"local\"\n\n\
             [[port]]\nname = \"p\"\nifname = \"lo\"\nmode = \"access\"\nnetwork = \"n\"\n",
            dir.join("vswitch.sock").display()
        ),
    )
    .unwrap();
    cfg
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vsw-run-errors-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // `nobody` must be able to create its control socket here.
    Command::new("chmod").arg("777").arg(&d).status().unwrap();
    d
}

#[test]
fn without_privileges_run_says_what_is_missing() {
    if !root_or_skip("without_privileges_run_says_what_is_missing") {
        return;
    }
    let ns = NetNs::new(PREFIX).unwrap();
    let dir = scratch("nopriv");
    let cfg = config(&dir);
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .arg("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_vswitch"))
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--cores", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_small_memlock_limit_is_refused_clearly() {
    if !root_or_skip("a_small_memlock_limit_is_refused_clearly") {
        return;
    }
    let ns = NetNs::new(PREFIX).unwrap();
    let dir = scratch("memlock");
    let cfg = config(&dir);
    // Root without CAP_IPC_LOCK and with a 64 KiB soft limit (the hard one is unchanged).
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .arg("prlimit")
        .args(["--memlock=65536:"])
        .arg("setpriv")
        .args(["--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock"])
        .arg(env!("CARGO_BIN_EXE_vswitch"))
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--cores", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("RLIMIT_MEMLOCK"), "{err}");
    let link = ns.ip(&["-d", "link", "show", "lo"]).unwrap();
    assert!(!link.contains("xdp"), "{link}");
    let _ = std::fs::remove_dir_all(&dir);
}
