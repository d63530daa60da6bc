//! The pipeline over AF_XDP ports on veth: two hosts on one local network talk through
//! vswitch (ping, a UDP exchange, a TCP transfer).
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns h1                      ns sw (the switch)                      ns h2
//!  eth0 198.18.5.1/24 ══ veth ══ p1 ─ XskPort ┐          ┌ XskPort ─ p2 ══ veth ══ eth0 198.18.5.2/24
//!                                             └ Pipeline ┘
//!                                        (access ports of network "n")
//! ```
//!
//! The switch side lives in its own namespace: the switch thread enters it with
//! `setns(CLONE_NEWNET)` (nsenter semantics), which keeps the process's mounts, so bpffs
//! at /sys/fs/bpf stays visible (`ip netns exec` would remount /sys and hide it). Nothing
//! is created in the root namespace; the namespaces are deleted by their guards, also
//! when the test fails, and the XDP programs go with the veths.
//!
//! Checksums: a veth peer with TX checksum offload hands over TCP/UDP frames whose L4
//! checksum is only partial (the kernel would complete it in the NIC). AF_XDP carries no
//! checksum metadata, so a switch reading raw frames cannot tell a partial checksum from
//! a wrong one. The hosts' ends therefore run with `ethtool -K eth0 tx off`: vswitch's
//! rule is that the devices it owns or is given have TX checksum offload off, and this
//! test checks that TCP and UDP pass (a ping alone would pass either way).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use dataplane::config::Config;
use dataplane::offline::single_worker_pipeline;
use dataplane::xsk::{umem_pool, RingSizes, XskConfig, XskPort, XskStats};
use vswitch_tests::netns::{enter, root_or_skip, veth_pair, NetNs};
use vswitch_tests::ping::Pinger;

const PREFIX: &str = "vsw-xsk";
const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 5, 1);
const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 5, 2);

const CONFIG: &str = r#"
[[network]]
name = "n"
segment = "local"

[[port]]
name = "p1"
mode = "access"
network = "n"

[[port]]
name = "p2"
mode = "access"
network = "n"
"#;

/// What the switch thread reports when it stops.
struct SwitchReport {
    modes: Vec<String>,
    stats: Vec<XskStats>,
    rx: u64,
}

/// Runs the switch in `sw` until `stop`; sends its ports' XDP modes (or the error) on
/// `ready` once the ports are open.
fn run_switch(
    sw: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<Vec<String>, String>>,
) -> Option<SwitchReport> {
    let setup = || -> Result<_, String> {
        enter(&sw).map_err(|e| e.to_string())?;
        let cfg = Config::from_str(CONFIG, "xsk_veth.toml").map_err(|e| e.to_string())?;
        let (pipeline, control) = single_worker_pipeline(&cfg).map_err(|e| e.to_string())?;
        let (pool, umem) =
            umem_pool(4096, 2048, RingSizes::default()).map_err(|e| e.to_string())?;
        let xcfg = XskConfig::default();
        let ports = ["p1", "p2"]
            .iter()
            .map(|p| XskPort::open(p, &umem, &pool, &xcfg).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((pipeline, control, pool, ports))
    };
    let (mut pipeline, _control, mut pool, mut ports) = match setup() {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return None;
        }
    };
    let modes = ports
        .iter()
        .map(|p| p.mode().to_string())
        .collect::<Vec<_>>();
    let _ = ready.send(Ok(modes.clone()));
    let start = Instant::now();
    let mut rx = 0;
    // The worker's busy loop: no poll(), no sleep.
    while !stop.load(Ordering::Relaxed) {
        let now = start.elapsed().as_nanos() as u64;
        rx += pipeline.poll(&mut ports, &mut pool, now) as u64;
    }
    Some(SwitchReport {
        modes,
        stats: ports.iter().map(XskPort::stats).collect(),
        rx,
    })
}

#[test]
fn two_hosts_ping_udp_and_tcp_through_af_xdp_ports() {
    if !root_or_skip("two_hosts_ping_udp_and_tcp_through_af_xdp_ports") {
        return;
    }
    let sw = NetNs::new(PREFIX).unwrap();
    let h1 = NetNs::new(PREFIX).unwrap();
    let h2 = NetNs::new(PREFIX).unwrap();
    veth_pair(&h1, "eth0", &sw, "p1").unwrap();
    veth_pair(&h2, "eth0", &sw, "p2").unwrap();
    for (h, a) in [(&h1, H1), (&h2, H2)] {
        h.ip(&["addr", "add", &format!("{a}/24"), "dev", "eth0"])
            .unwrap();
        h.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
        // No IPv6 chatter (router solicitations, DAD) in the way.
        h.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let worker = {
        let (path, stop) = (sw.path(), Arc::clone(&stop));
        std::thread::spawn(move || run_switch(path, stop, ready_tx))
    };
    // Stops the worker even when an assertion below fails.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let guard = StopOnDrop(Arc::clone(&stop));

    let modes = ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("switch thread did not start")
        .unwrap_or_else(|e| panic!("opening the AF_XDP ports failed: {e}"));
    eprintln!("XDP modes: {modes:?}");
    assert!(
        modes.iter().all(|m| m == "native"),
        "veth supports native XDP: {modes:?}"
    );

    // Ping both ways (the first ones also resolve ARP through the switch).
    let p1 = Pinger::open(&h1, 0x5801).unwrap();
    let p2 = Pinger::open(&h2, 0x5802).unwrap();
    let mut ok = 0;
    for seq in 0..10 {
        if p1
            .ping(H2, seq, 56, Duration::from_millis(500))
            .unwrap()
            .is_some()
        {
            ok += 1;
        }
    }
    assert!(ok >= 8, "h1 → h2: {ok}/10 pings answered");
    for seq in 0..5 {
        assert!(
            p2.ping(H1, seq, 1400, Duration::from_millis(500))
                .unwrap()
                .is_some(),
            "h2 → h1 ping {seq} (1400 bytes) unanswered"
        );
    }

    // UDP: 200 datagrams of 1200 bytes; the receiver's kernel checks every checksum.
    let srv = h2.run_in(|| UdpSocket::bind((H2, 9000))).unwrap().unwrap();
    let cli = h1.run_in(|| UdpSocket::bind((H1, 0))).unwrap().unwrap();
    srv.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = 0;
    let mut buf = [0u8; 2048];
    for i in 0..200u32 {
        let mut d = vec![(i % 251) as u8; 1200];
        d[..4].copy_from_slice(&i.to_be_bytes());
        cli.send_to(&d, (H2, 9000)).unwrap();
        if i % 16 == 15 {
            while let Ok((n, _)) = srv.recv_from(&mut buf) {
                assert_eq!(n, 1200);
                let k = u32::from_be_bytes(buf[..4].try_into().unwrap());
                assert!(
                    buf[4..n].iter().all(|&b| b == (k % 251) as u8),
                    "datagram {k} corrupted"
                );
                got += 1;
                if got % 16 == 0 {
                    break;
                }
            }
        }
    }
    while let Ok((n, _)) = srv.recv_from(&mut buf) {
        assert_eq!(n, 1200);
        got += 1;
    }
    assert!(got >= 190, "UDP: {got}/200 datagrams arrived");

    // TCP: 4 MiB from h1 to h2, checked byte for byte.
    const LEN: usize = 4 << 20;
    let listener = h2
        .run_in(|| TcpListener::bind((H2, 9001)))
        .unwrap()
        .unwrap();
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut v = Vec::with_capacity(LEN);
        s.read_to_end(&mut v).unwrap();
        v
    });
    let t0 = Instant::now();
    h1.run_in(|| {
        let mut s = TcpStream::connect_timeout(&(H2, 9001).into(), Duration::from_secs(5)).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        let data: Vec<u8> = (0..LEN).map(|i| (i % 253) as u8).collect();
        s.write_all(&data).unwrap();
    })
    .unwrap();
    let v = receiver.join().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(v.len(), LEN, "TCP: {} of {LEN} bytes arrived", v.len());
    assert!(
        v.iter().enumerate().all(|(i, &b)| b == (i % 253) as u8),
        "TCP data corrupted"
    );
    eprintln!(
        "TCP: {LEN} bytes in {secs:.2} s ({:.0} Mbit/s)",
        LEN as f64 * 8.0 / secs / 1e6
    );

    drop(guard);
    let report = worker.join().unwrap().expect("switch thread failed");
    eprintln!(
        "switch: {} frames received; modes {:?}",
        report.rx, report.modes
    );
    for (i, s) in report.stats.iter().enumerate() {
        eprintln!("  p{}: {s:?}", i + 1);
        assert_eq!(s.rx_invalid, 0);
    }
    // The ports are closed: no XDP program may be left on the switch's veths.
    for p in ["p1", "p2"] {
        let link = sw.ip(&["-d", "link", "show", "dev", p]).unwrap();
        assert!(
            !link.contains("prog/xdp"),
            "XDP program left on {p}: {link}"
        );
    }
}

/// Set in the environment of the child that plays a crashed vswitch.
const CRASH_ENV: &str = "VSW_XSK_CRASH_NS";

/// Not a test of its own: run by `lifecycle_errors_and_crash_recovery` in a child process
/// (with [`CRASH_ENV`] set), it opens an AF_XDP port and dies without cleaning up, as
/// `kill -9` would leave it.
#[test]
fn crash_helper() {
    let Some(ns) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    enter(std::path::Path::new(&ns)).unwrap();
    let (pool, umem) = umem_pool(256, 2048, RingSizes::default()).unwrap();
    let port = XskPort::open("p1", &umem, &pool, &XskConfig::default()).unwrap();
    std::mem::forget(port);
    std::process::abort();
}

#[test]
fn lifecycle_errors_and_crash_recovery() {
    if !root_or_skip("lifecycle_errors_and_crash_recovery") {
        return;
    }
    let sw = NetNs::new(PREFIX).unwrap();
    let h1 = NetNs::new(PREFIX).unwrap();
    veth_pair(&h1, "eth0", &sw, "p1").unwrap();

    // A run killed while it had p1 leaves its XDP program attached.
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_helper", "--nocapture", "--test-threads=1"])
        .env(CRASH_ENV, sw.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the crash helper was meant to abort");
    let link = sw.ip(&["-d", "link", "show", "dev", "p1"]).unwrap();
    assert!(
        link.contains("prog/xdp"),
        "the crashed run left no program: {link}"
    );

    let path = sw.path();
    let r = std::thread::spawn(move || {
        enter(&path).unwrap();
        let (pool, umem) = umem_pool(256, 2048, RingSizes::default()).unwrap();
        let cfg = XskConfig::default();
        let missing = XskPort::open("nope0", &umem, &pool, &cfg).unwrap_err();
        // The next start detects and replaces the stale program.
        let port = XskPort::open("p1", &umem, &pool, &cfg).unwrap();
        let replaced = port.replaced_stale();
        // A second open of the same interface is refused while the first holds it.
        let busy = XskPort::open("p1", &umem, &pool, &cfg).unwrap_err();
        drop(port);
        (missing.to_string(), replaced, busy.to_string())
    })
    .join()
    .unwrap();
    eprintln!("{r:?}");
    assert!(r.0.contains("no network device named \"nope0\""), "{}", r.0);
    assert!(r.1, "the stale program was not reported as replaced");
    assert!(r.2.contains("already bound"), "{}", r.2);
    let link = sw.ip(&["-d", "link", "show", "dev", "p1"]).unwrap();
    assert!(
        !link.contains("prog/xdp"),
        "program left after a clean close: {link}"
    );

    // An MTU that does not fit a 2048-byte frame.
    sw.ip(&["link", "set", "dev", "p1", "mtu", "3000"]).unwrap();
    let path = sw.path();
    let e = std::thread::spawn(move || {
        enter(&path).unwrap();
        let (pool, umem) = umem_pool(256, 2048, RingSizes::default()).unwrap();
        XskPort::open("p1", &umem, &pool, &XskConfig::default())
            .unwrap_err()
            .to_string()
    })
    .join()
    .unwrap();
    assert!(e.contains("MTU 3000"), "{e}");
}
