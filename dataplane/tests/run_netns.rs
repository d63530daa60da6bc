//! `vswitch run` end to end: the real binary on AF_XDP ports in a switch namespace,
//! three hosts on two networks with overlapping addresses, `vswitch ctl` against its
//! control socket, then SIGTERM and no XDP program left behind.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns h1  eth0 198.18.7.1/24 ══ veth ══ p1 ┐                 network a (access)
//!  ns h2  eth0 198.18.7.2/24 ══ veth ══ p2 ┼ vswitch run     network a (access)
//!  ns h3  eth0 198.18.7.2/24 ══ veth ══ p3 ┘ (ns sw)         network b (access)
//! ```
//!
//! h2 and h3 share an address: h1 must reach h2 (and learn h2's MAC for it, never
//! h3's), and h3 must reach nothing of network a. The switch runs under
//! `nsenter --net=/run/netns/SW` so that bpffs at /sys/fs/bpf stays visible (`ip netns
//! exec` would remount /sys). Every namespace is a guard deleted on drop; the switch
//! process is killed by its own guard if the test fails before the SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use netrun::{pings, veth_queues};

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dataplane::control::proto::{Reply, Response};
use vswitch_tests::netns::{fmt_mac, root_or_skip, veth_pair, wait_until, NetNs};
use vswitch_tests::ping::Pinger;

const PREFIX: &str = "vsw-run";
const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 1);
const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 2);

const BIN: &str = env!("CARGO_BIN_EXE_vswitch");

/// The switch process; killed (SIGKILL) on drop if still running.
struct SwitchProc(Option<Child>);

impl Drop for SwitchProc {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(socket: &Path) -> String {
    format!(
        r#"
[switch]
workers = 1
control_socket = "{}"

[[network]]
name = "a"
segment = "local"

[[network]]
name = "b"
segment = "local"

[[port]]
name = "p1"
ifname = "p1"
mode = "access"
network = "a"

[[port]]
name = "p2"
ifname = "p2"
mode = "access"
network = "a"

[[port]]
name = "p3"
ifname = "p3"
mode = "access"
network = "b"
"#,
        socket.display()
    )
}

/// `vswitch ctl --socket S ARGS --json`, parsed.
fn ctl_json(socket: &Path, args: &[&str]) -> Reply {
    let out = Command::new(BIN)
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vswitch ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice::<Response>(&out.stdout).unwrap() {
        Response::Ok { reply } => reply,
        Response::Error { error } => panic!("ctl {args:?}: {error:?}"),
    }
}

/// `vswitch ctl --socket S ARGS` (text).
fn ctl_text(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn vswitch_run_two_networks_ctl_and_clean_sigterm() {
    if !root_or_skip("vswitch_run_two_networks_ctl_and_clean_sigterm") {
        return;
    }
    let sw = NetNs::new(PREFIX).unwrap();
    let h1 = NetNs::new(PREFIX).unwrap();
    let h2 = NetNs::new(PREFIX).unwrap();
    let h3 = NetNs::new(PREFIX).unwrap();
    for (h, p, a) in [(&h1, "p1", H1), (&h2, "p2", H2), (&h3, "p3", H2)] {
        veth_pair(h, "eth0", &sw, p).unwrap();
        vswitch_tests::netns::fastpath_napi(h, "eth0").unwrap();
        h.ip(&["addr", "add", &format!("{a}/24"), "dev", "eth0"])
            .unwrap();
        // Partial checksums would reach the switch otherwise (see xsk_veth.rs).
        h.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
        h.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    }
    let dir = TempDir(std::env::temp_dir().join(sw.name()));
    std::fs::create_dir_all(&dir.0).unwrap();
    let socket = dir.0.join("vswitch.sock");
    let cfg_path = dir.0.join("vswitch.toml");
    std::fs::write(&cfg_path, config(&socket)).unwrap();
    let log_path = dir.0.join("vswitch.log");
    let log = std::fs::File::create(&log_path).unwrap();

    let child = Command::new("nsenter")
        .arg(format!("--net={}", sw.path().display()))
        .arg("--")
        .arg(BIN)
        .arg("run")
        .arg("--config")
        .arg(&cfg_path)
        .args(vswitch_tests::netns::fastpath_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut proc = SwitchProc(Some(child));
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let up = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        ctl_text(&socket, &["show"]).status.success()
            || proc.0.as_mut().unwrap().try_wait().unwrap().is_some()
    });
    assert!(up, "vswitch run did not come up:\n{}", log_text());
    assert!(
        proc.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "vswitch run exited:\n{}",
        log_text()
    );
    let started = log_text();
    eprintln!("{started}");
    for p in ["p1", "p2", "p3"] {
        assert!(
            started.contains(&format!("port {p} on {p}: AF_XDP, XDP native mode")),
            "no XDP mode reported for {p}:\n{started}"
        );
    }

    // Within network a: h1 ↔ h2.
    let p1 = Pinger::open(&h1, 0x7701).unwrap();
    let p3 = Pinger::open(&h3, 0x7703).unwrap();
    netrun::warm_up(&p1, H2);
    let ok = pings(&p1, H2, 10);
    assert!(ok >= 8, "h1 → h2: {ok}/10 pings answered\n{}", log_text());
    // h1 resolved 198.18.7.2 to h2, never to h3 (same address, other network).
    let h2_mac = fmt_mac(h2.mac("eth0").unwrap());
    let h3_mac = fmt_mac(h3.mac("eth0").unwrap());
    let neigh = h1.ip(&["neigh", "show", "dev", "eth0"]).unwrap();
    assert!(neigh.contains(&h2_mac), "h1's neighbours: {neigh}");
    assert!(!neigh.contains(&h3_mac), "h1 reached h3: {neigh}");
    // Across networks: h3 reaches nothing of network a.
    let leaked = pings(&p3, H1, 5);
    assert_eq!(leaked, 0, "h3 (network b) reached h1 (network a)");

    // The control socket.
    let Reply::Fdb(fdb) = ctl_json(&socket, &["fdb", "show"]) else {
        panic!("fdb show: not an fdb reply")
    };
    eprintln!("fdb: {fdb:?}");
    let h1_mac = fmt_mac(h1.mac("eth0").unwrap());
    let row = |mac: &str| fdb.entries.iter().find(|e| e.mac == mac).cloned();
    let r1 = row(&h1_mac).expect("h1's MAC not learned");
    assert_eq!((r1.network.as_str(), r1.port.as_deref()), ("a", Some("p1")));
    let r2 = row(&h2_mac).expect("h2's MAC not learned");
    assert_eq!((r2.network.as_str(), r2.port.as_deref()), ("a", Some("p2")));
    if let Some(r3) = row(&h3_mac) {
        assert_eq!((r3.network.as_str(), r3.port.as_deref()), ("b", Some("p3")));
    }
    let Reply::Stats(stats) = ctl_json(&socket, &["stats"]) else {
        panic!("stats: not a stats reply")
    };
    eprintln!("stats workers: {:?}", stats.workers);
    assert_eq!(stats.workers.len(), 1);
    let w = &stats.workers[0];
    // Frames the XDP fast path forwarded (when on) never reached the worker.
    let fast = stats.fastpath.as_ref().map_or(0, |f| f.get("hits"));
    assert!(
        w.packets + fast >= 20,
        "worker 0 counted {} packets, the fast path {fast}",
        w.packets
    );
    assert!(w.busy_ns > 0 && w.idle_ns > 0, "{w:?}");
    assert!(w.ns_per_packet.is_some(), "{w:?}");
    let p1_stats = stats.ports.iter().find(|p| p.name == "p1").unwrap();
    assert!(p1_stats.rx_frames >= 10 && p1_stats.tx_frames >= 8);
    let Reply::Show(show) = ctl_json(&socket, &["show"]) else {
        panic!("show: not a show reply")
    };
    assert_eq!(show.datapath, "af_xdp");
    for p in &show.ports {
        assert_eq!(p.xdp_mode, Some(dataplane::control::proto::XdpMode::Native));
        assert_eq!(p.link, dataplane::control::proto::LinkState::Up);
    }
    let text = ctl_text(&socket, &["show"]);
    assert!(text.status.success());
    eprintln!("{}", String::from_utf8_lossy(&text.stdout));
    // A change with the same ports applies; a port without a netdev is refused (and
    // nothing changes).
    ctl_json(&socket, &["fdb", "flush", "--network", "b"]);
    let add = ctl_text(&socket, &["port", "add", "p4", "--network", "a"]);
    assert!(!add.status.success());
    assert!(
        String::from_utf8_lossy(&add.stderr).contains("needs a netdev"),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let Reply::Show(after) = ctl_json(&socket, &["show"]) else {
        panic!("show: not a show reply")
    };
    assert_eq!(after.ports.len(), 3);

    // SIGTERM: a clean stop, no XDP program left, the socket gone.
    let pid = proc.0.as_ref().unwrap().id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut child = proc.0.take().unwrap();
    let done = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        child.try_wait().unwrap().is_some()
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!("vswitch run did not stop on SIGTERM:\n{}", log_text());
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status}:\n{}", log_text());
    for p in ["p1", "p2", "p3"] {
        let link = sw.ip(&["-d", "link", "show", "dev", p]).unwrap();
        assert!(!link.contains("xdp"), "XDP program left on {p}: {link}");
    }
    assert!(!socket.exists(), "control socket left behind");
}

/// Runs `vswitch run --config CFG` in `sw` until it exits or `timeout`; returns its exit
/// status and stderr, or `None` if it is still running (then it is killed).
fn run_to_exit(sw: &NetNs, cfg: &Path, timeout: Duration) -> Option<(bool, String)> {
    let out = Command::new("timeout")
        .arg("-s")
        .arg("KILL")
        .arg(format!("{}", timeout.as_secs()))
        .arg("nsenter")
        .arg(format!("--net={}", sw.path().display()))
        .arg("--")
        .arg(BIN)
        .arg("run")
        .arg("--config")
        .arg(cfg)
        .args(vswitch_tests::netns::fastpath_args())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // `timeout -s KILL` exits 137 when it had to kill.
    if out.status.code() == Some(137) {
        return None;
    }
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Two workers, each binding its own queue of every port (veths with two queues): both
/// forward, `ctl stats` shows both; a port without `ifname` and a netdev with fewer
/// queues than workers are refused before anything is opened.
#[test]
fn vswitch_run_two_workers_and_refusals() {
    if !root_or_skip("vswitch_run_two_workers_and_refusals") {
        return;
    }
    let sw = NetNs::new(PREFIX).unwrap();
    let h1 = NetNs::new(PREFIX).unwrap();
    let h2 = NetNs::new(PREFIX).unwrap();
    veth_queues(&h1, "eth0", &sw, "p1", 2);
    veth_queues(&h2, "eth0", &sw, "p2", 2);
    // A one-queue veth for the refusal.
    veth_pair(&h1, "eth1", &sw, "p3").unwrap();
    vswitch_tests::netns::fastpath_napi(&h1, "eth1").unwrap();
    for (h, a) in [(&h1, H1), (&h2, H2)] {
        h.ip(&["addr", "add", &format!("{a}/24"), "dev", "eth0"])
            .unwrap();
        h.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
        h.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    }
    let dir = TempDir(std::env::temp_dir().join(sw.name()));
    std::fs::create_dir_all(&dir.0).unwrap();
    let socket = dir.0.join("vswitch.sock");
    let two_workers = |ports: &str| {
        format!(
            "[switch]\nworkers = 2\ncontrol_socket = \"{}\"\n\n[[network]]\nname = \"a\"\nsegment = \"local\"\n{ports}",
            socket.display()
        )
    };
    let port = |name: &str, ifname: Option<&str>| {
        let ifname = ifname.map_or_else(String::new, |i| format!("ifname = \"{i}\"\n"));
        format!("\n[[port]]\nname = \"{name}\"\n{ifname}mode = \"access\"\nnetwork = \"a\"\n")
    };
    let cfg_path = dir.0.join("vswitch.toml");

    // Refused: a port without a netdev.
    let ports = format!("{}{}", port("p1", Some("p1")), port("vm9", None));
    std::fs::write(&cfg_path, two_workers(&ports)).unwrap();
    let (ok, err) = run_to_exit(&sw, &cfg_path, Duration::from_secs(20)).expect("still running");
    assert!(!ok);
    assert!(
        err.contains("\"vm9\"") && err.contains("no ifname"),
        "{err}"
    );
    // Refused: a netdev with one queue for two workers.
    let ports = format!("{}{}", port("p1", Some("p1")), port("p3", Some("p3")));
    std::fs::write(&cfg_path, two_workers(&ports)).unwrap();
    let (ok, err) = run_to_exit(&sw, &cfg_path, Duration::from_secs(20)).expect("still running");
    assert!(!ok);
    assert!(
        err.contains("p3") && err.contains("1 receive queue(s), fewer than the 2 workers"),
        "{err}"
    );
    let link = sw.ip(&["-d", "link", "show", "dev", "p1"]).unwrap();
    assert!(
        !link.contains("xdp"),
        "refused start left a program: {link}"
    );

    // Two workers on two-queue veths.
    let ports = format!("{}{}", port("p1", Some("p1")), port("p2", Some("p2")));
    std::fs::write(&cfg_path, two_workers(&ports)).unwrap();
    let log_path = dir.0.join("vswitch.log");
    let child = Command::new("nsenter")
        .arg(format!("--net={}", sw.path().display()))
        .arg("--")
        .arg(BIN)
        .arg("run")
        .arg("--config")
        .arg(&cfg_path)
        .args(vswitch_tests::netns::fastpath_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut proc = SwitchProc(Some(child));
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let up = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        ctl_text(&socket, &["show"]).status.success()
            || proc.0.as_mut().unwrap().try_wait().unwrap().is_some()
    });
    assert!(up, "vswitch run did not come up:\n{}", log_text());
    assert!(
        proc.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "vswitch run exited:\n{}",
        log_text()
    );
    // Several flows (ICMP idents), so that RSS spreads them over both queues.
    let mut ok = 0;
    for ident in 0..8u16 {
        let p = Pinger::open(&h1, 0x7710 + ident).unwrap();
        ok += pings(&p, H2, 3);
    }
    assert!(ok >= 20, "h1 → h2: {ok}/24 pings answered\n{}", log_text());
    let Reply::Stats(stats) = ctl_json(&socket, &["stats"]) else {
        panic!("stats: not a stats reply")
    };
    eprintln!("stats workers: {:?}", stats.workers);
    assert_eq!(stats.workers.len(), 2);
    let packets: u64 = stats.workers.iter().map(|w| w.packets).sum::<u64>()
        + stats.fastpath.as_ref().map_or(0, |f| f.get("hits"));
    assert!(packets >= 40, "{packets} packets in all");

    let pid = proc.0.as_ref().unwrap().id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut child = proc.0.take().unwrap();
    let done = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        child.try_wait().unwrap().is_some()
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!("vswitch run did not stop on SIGTERM:\n{}", log_text());
    }
    assert!(child.wait().unwrap().success(), "{}", log_text());
    for p in ["p1", "p2"] {
        let link = sw.ip(&["-d", "link", "show", "dev", p]).unwrap();
        assert!(!link.contains("xdp"), "XDP program left on {p}: {link}");
    }
}
