//! `vswitch ctl capture`: frames of a running switch's port written as pcap, checked
//! with tshark, while the port keeps forwarding.
//!
//! - Over in-memory channel ports (no root needed): a running [`Switch`] behind a real
//!   control socket and the real `vswitch ctl capture` binary: a trunk's `out` frames
//!   carry the pushed 802.1Q tag, `-w -` streams a readable pcap to stdout, one capture
//!   per port at a time, a stopped capture ends with its summary and frees the port,
//!   unknown ports and bad arguments are refused.
//! - On AF_XDP veth ports in network namespaces (root; otherwise `SKIPPED: needs root`):
//!
//! ```text
//!  ns vm1 eth0 198.18.47.1/24 ══ veth ══ p1 ┐                  network a (access)
//!  ns vm2 eth0 198.18.47.2/24 ══ veth ══ p2 ┼ vswitch run (sw)  network a (access)
//!  ns h3  eth0 (no address)   ══ veth ══ p3 ┘                  trunk, VID 10 = a
//! ```
//!
//!   vm1 pings vm2 while p1 is captured both ways (requests in, replies out) and p2
//!   `in` (replies); it pings a ghost address with a static neighbour entry (unknown
//!   unicast, flooded) while p3 is captured `out` to stdout (tagged VID 10); Ctrl-C stops
//!   a capture without a count; pings keep being answered throughout.
//! - Two workers on two-queue veths (root, two cores): 64 UDP flows reach both
//!   workers' queues of p1, and the capture of p1 `in` holds every datagram (both
//!   workers' rings drained and merged).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataplane::capture::Filter;
use dataplane::config::Config;
use dataplane::control::client::{CaptureStream, ClientError};
use dataplane::control::proto::{
    CaptureEndReason, CaptureItem, ErrorKind, Reply, Request, Response,
};
use dataplane::control::ControlServer;
use dataplane::runtime::chan::{ChannelBackend, PortEnd};
use dataplane::runtime::{StartOptions, Switch};
use netrun::{tshark_fields, TempDir, Vswitch, BIN};
use vswitch_tests::netns::{root_or_skip, veth_pair, wait_until, NetNs};
use vswitch_tests::ping::Pinger;

/// How long a capture may take to finish in these tests (a loaded machine).
const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------
// Over channel ports.

const CHANNEL_CFG: &str = r#"
[[network]]
name = "a"
segment = "local"

[[port]]
name = "a1"
mode = "access"
network = "a"

[[port]]
name = "a2"
mode = "access"
network = "a"

[[port]]
name = "t1"
mode = "trunk"
vlans = { 10 = "a" }
"#;

const H1: [u8; 6] = [2, 0x2f, 0, 0, 0, 1];

/// A broadcast frame from H1, numbered `i` in its payload.
fn frame(i: u32) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&H1);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&i.to_be_bytes());
    f
}

/// A running switch over channel ports, its control socket served by a thread.
struct ChannelSwitch {
    ends: Vec<PortEnd>,
    sock: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    dir: TempDir,
}

impl ChannelSwitch {
    fn start(name: &str) -> ChannelSwitch {
        let cfg = Config::from_str(CHANNEL_CFG, "capture.toml").unwrap();
        let (backend, ends) = ChannelBackend::new(cfg.ports.len());
        let mut sw = Switch::start(cfg, Arc::new(backend), &StartOptions::default()).unwrap();
        let dir = TempDir::new(&format!("vswitch-capture-{name}-{}", std::process::id()));
        let sock = dir.0.join("vswitch.sock");
        let (mut handle, queue) = ControlServer::bind(&sock).unwrap().start().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                queue.serve_timeout(&mut sw, Duration::from_millis(20));
            }
            handle.shutdown();
            sw.shutdown();
        });
        ChannelSwitch {
            ends,
            sock,
            stop,
            thread: Some(thread),
            dir,
        }
    }

    fn ctl(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("ctl").arg("--socket").arg(&self.sock).args(args);
        c
    }

    /// Runs `child` to its end while sending numbered frames into port a1 (and
    /// draining what the switch sends): its output, and the frames sent and received
    /// on a2 meanwhile.
    fn feed_until_exit(&self, mut child: Child) -> (Output, u32, u32) {
        let start = Instant::now();
        let (mut sent, mut got) = (0u32, 0u32);
        loop {
            if child.try_wait().unwrap().is_some() || start.elapsed() > DEADLINE {
                break;
            }
            self.ends[0].rx.send(frame(sent)).unwrap();
            sent += 1;
            std::thread::sleep(Duration::from_millis(10));
            got += self.ends[1].tx.try_iter().count() as u32;
            self.ends[2].tx.try_iter().for_each(drop);
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            panic!("capture did not end within {DEADLINE:?}");
        }
        // The last frames still in flight.
        let start = Instant::now();
        while got < sent && start.elapsed() < Duration::from_secs(5) {
            if self.ends[1]
                .tx
                .recv_timeout(Duration::from_millis(100))
                .is_ok()
            {
                got += 1;
            }
        }
        (child.wait_with_output().unwrap(), sent, got)
    }
}

impl Drop for ChannelSwitch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads the frames of a pcap file: (timestamp ns, original length, bytes).
fn read_pcap(path: &Path) -> Vec<(u128, u32, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    assert_eq!(r.header().datalink, pcap_file::DataLink::ETHERNET);
    assert_eq!(
        r.header().ts_resolution,
        pcap_file::TsResolution::NanoSecond
    );
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        out.push((p.timestamp.as_nanos(), p.orig_len, p.data.into_owned()));
    }
    out
}

#[test]
fn capture_over_channel_ports() {
    let sw = ChannelSwitch::start("chan");
    let dir = &sw.dir.0;

    // A trunk's frames as sent: tagged with VID 10 (pushed), every frame forwarded.
    let file = dir.join("t1.pcap");
    let child = sw
        .ctl(&["capture", "t1", "--filter", "out", "-c", "3", "-w"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, sent, got) = sw.feed_until_exit(child);
    assert!(out.status.success(), "capture t1: {}", stderr(&out));
    assert!(
        stderr(&out).contains("3 frame(s) captured on t1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sent, got, "frames lost during the capture");
    let rows = tshark_fields(&file, &["vlan.id", "eth.src", "eth.dst", "frame.len"]);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in &rows {
        assert_eq!(
            r,
            &["10", "02:2f:00:00:00:01", "ff:ff:ff:ff:ff:ff", "64"],
            "{rows:?}"
        );
    }
    let frames = read_pcap(&file);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for (ts, len, data) in &frames {
        assert!(
            *ts <= now && now - ts < 60_000_000_000,
            "timestamp {ts} vs {now}"
        );
        assert_eq!((*len, data.len()), (64, 64));
    }

    // `-w -`: the pcap on stdout; `in` on a1 is the frames as received, untagged.
    let child = sw
        .ctl(&[
            "capture", "a1", "--filter", "in", "-c", "2", "-s", "20", "--json", "-w", "-",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, _, _) = sw.feed_until_exit(child);
    assert!(out.status.success(), "capture a1: {}", stderr(&out));
    // --json: the end record on stderr.
    assert!(
        stderr(&out).contains(r#""captured":2,"capture_dropped":0,"reason":"count""#),
        "{}",
        stderr(&out)
    );
    let file = dir.join("a1.pcap");
    std::fs::write(&file, &out.stdout).unwrap();
    // Snaplen 20: 20 bytes kept of 60 (pcap-file's reader refuses such records:
    // tshark only).
    let rows = tshark_fields(&file, &["eth.src", "vlan.id", "frame.cap_len", "frame.len"]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert_eq!(r, &["02:2f:00:00:00:01", "", "20", "60"], "{rows:?}");
    }

    // Refusals: unknown port (no file left), bad arguments (clap).
    let nope = dir.join("nope.pcap");
    let out = sw
        .ctl(&["capture", "nope", "-w"])
        .arg(&nope)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("port \"nope\" does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!nope.exists(), "a refused capture left a file");
    for bad in [
        vec!["capture", "a1", "--filter", "sideways", "-w", "-"],
        vec!["capture", "a1", "-c", "0", "-w", "-"],
        vec!["capture", "a1", "-s", "70000", "-w", "-"],
        vec!["capture", "a1"],
    ] {
        let out = sw.ctl(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
}

/// The library's client: one capture per port, stopping ends it with a summary, the
/// port can be captured again at once, and the frames go on being forwarded.
#[test]
fn one_capture_per_port_and_stop() {
    let sw = ChannelSwitch::start("stop");
    let req = |port: &str| Request::Capture {
        port: port.into(),
        filter: Filter::Both,
        snaplen: None,
        count: None,
        ring: Some(16),
    };
    let (mut first, r) = CaptureStream::open(&sw.sock, &req("a1")).unwrap();
    assert!(
        matches!(r, Response::Ok { reply: Reply::Capture(ref c) } if c.port == "a1" && c.ring == 16),
        "{r:?}"
    );
    let (_, r) = CaptureStream::open(&sw.sock, &req("a1")).unwrap();
    match r {
        Response::Error { error } => {
            assert_eq!(error.kind, ErrorKind::Busy);
            assert!(
                error.message.contains("already running"),
                "{}",
                error.message
            );
        }
        r => panic!("a second capture of a1: {r:?}"),
    }
    // Another port can be captured meanwhile.
    let (other, r) = CaptureStream::open(&sw.sock, &req("a2")).unwrap();
    assert!(matches!(r, Response::Ok { .. }), "{r:?}");
    drop(other);

    // 40 frames while nobody reads the stream: all forwarded, each captured or counted.
    for i in 0..40 {
        sw.ends[0].rx.send(frame(i)).unwrap();
    }
    let mut got = 0;
    let start = Instant::now();
    while got < 40 && start.elapsed() < DEADLINE {
        if sw.ends[1]
            .tx
            .recv_timeout(Duration::from_millis(100))
            .is_ok()
        {
            got += 1;
        }
    }
    assert_eq!(got, 40, "frames lost while capturing");
    first.stop();
    let mut frames = 0;
    let end = loop {
        match first.recv() {
            Ok(Some(CaptureItem::Frame(f))) => {
                assert_eq!(&f.data[6..12], &H1);
                frames += 1;
            }
            Ok(Some(CaptureItem::End(e))) => break e,
            Ok(None) => assert!(start.elapsed() < DEADLINE, "no end record"),
            Err(e) => panic!("capture stream: {e}"),
        }
    };
    assert_eq!(end.reason, CaptureEndReason::Stopped);
    assert_eq!(end.captured, frames);
    // Both directions: 40 in on a1 (a1 sends nothing), each frame once.
    assert_eq!(frames + end.capture_dropped, 40, "{end:?}");
    assert!(matches!(first.recv(), Err(ClientError::Closed(_))));

    // The port is free again.
    let (mut again, r) = CaptureStream::open(&sw.sock, &req("a1")).unwrap();
    assert!(matches!(r, Response::Ok { .. }), "{r:?}");
    sw.ends[0].rx.send(frame(99)).unwrap();
    let f = loop {
        match again.recv().unwrap() {
            Some(CaptureItem::Frame(f)) => break f,
            Some(CaptureItem::End(e)) => panic!("ended: {e:?}"),
            None => assert!(start.elapsed() < DEADLINE, "no frame"),
        }
    };
    assert_eq!(f.data, frame(99));

    // A port removed while captured: its capture ends, saying so.
    let (mut gone, r) = CaptureStream::open(&sw.sock, &req("a2")).unwrap();
    assert!(matches!(r, Response::Ok { .. }), "{r:?}");
    let r = dataplane::control::client::call(&sw.sock, &Request::PortDel { name: "a2".into() })
        .unwrap();
    assert!(matches!(r, Response::Ok { .. }), "{r:?}");
    let end = loop {
        match gone.recv().unwrap() {
            Some(CaptureItem::End(e)) => break e,
            Some(CaptureItem::Frame(_)) => {}
            None => assert!(start.elapsed() < DEADLINE, "no end after the port went"),
        }
    };
    assert_eq!(end.reason, CaptureEndReason::Closed);
}

// ---------------------------------------------------------------------------------
// On AF_XDP ports in network namespaces.

const PREFIX: &str = "vsw-cap";
const VM1: Ipv4Addr = Ipv4Addr::new(198, 18, 47, 1);
const VM2: Ipv4Addr = Ipv4Addr::new(198, 18, 47, 2);
/// No host has it: vm1's static neighbour entry sends its frames to an unknown MAC.
const GHOST: Ipv4Addr = Ipv4Addr::new(198, 18, 47, 9);
const GHOST_MAC: &str = "02:2f:00:00:00:09";

fn netns_config(socket: &Path) -> String {
    format!(
        r#"
[switch]
workers = 1
control_socket = "{}"

[[network]]
name = "a"
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
mode = "trunk"
vlans = {{ 10 = "a" }}
"#,
        socket.display()
    )
}

/// Pings `to` from `p` (answered or not, `wait` each) until `child` exits; returns
/// its output and (sent, answered).
fn ping_until_exit(
    p: &Pinger,
    to: Ipv4Addr,
    wait: Duration,
    mut child: Child,
) -> (Output, u16, u16) {
    let start = Instant::now();
    let (mut sent, mut answered) = (0u16, 0u16);
    while child.try_wait().unwrap().is_none() && start.elapsed() < DEADLINE {
        if p.ping(to, sent, 56, wait).unwrap().is_some() {
            answered += 1;
        }
        sent = sent.wrapping_add(1);
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        panic!("capture did not end within {DEADLINE:?}");
    }
    (child.wait_with_output().unwrap(), sent, answered)
}

fn capture_cmd(s: &Vswitch, args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("ctl")
        .arg("--socket")
        .arg(&s.socket)
        .arg("capture")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// At least 80 % of the pings answered: forwarding goes on while capturing.
fn mostly_answered(what: &str, sent: u16, answered: u16, s: &Vswitch) {
    assert!(
        sent > 0 && u32::from(answered) * 5 >= u32::from(sent) * 4,
        "{what}: {answered}/{sent} pings answered during the capture\n{}",
        s.log()
    );
}

#[test]
fn capture_on_af_xdp_ports_while_forwarding() {
    if !root_or_skip("capture_on_af_xdp_ports_while_forwarding") {
        return;
    }
    let sw = NetNs::new(PREFIX).unwrap();
    let vm1 = NetNs::new(PREFIX).unwrap();
    let vm2 = NetNs::new(PREFIX).unwrap();
    let h3 = NetNs::new(PREFIX).unwrap();
    netrun::vm(&sw, "p1", &vm1, "02:2f:00:00:00:01", "198.18.47.1/24", 1500);
    netrun::vm(&sw, "p2", &vm2, "02:2f:00:00:00:02", "198.18.47.2/24", 1500);
    veth_pair(&h3, "eth0", &sw, "p3").unwrap();
    vswitch_tests::netns::fastpath_napi(&h3, "eth0").unwrap();
    h3.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    vm1.ip(&[
        "neigh",
        "replace",
        &GHOST.to_string(),
        "lladdr",
        GHOST_MAC,
        "nud",
        "permanent",
        "dev",
        "eth0",
    ])
    .unwrap();
    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let cores = netrun::cores();
    let core = *cores.last().unwrap();
    let s = Vswitch::start(&sw, &dir.0, "sw", &netns_config(&socket), core);
    let p1 = Pinger::open(&vm1, 0x4701).unwrap();
    netrun::warm_up(&p1, VM2);
    let fast = Duration::from_millis(300);

    // p1 both ways: echo requests received, replies sent.
    let file = dir.0.join("p1.pcap");
    let child = capture_cmd(&s, &["p1", "-c", "6", "-w", file.to_str().unwrap()]);
    let (out, sent, answered) = ping_until_exit(&p1, VM2, fast, child);
    assert!(out.status.success(), "capture p1: {}", stderr(&out));
    mostly_answered("p1 both", sent, answered, &s);
    let rows = tshark_fields(&file, &["ip.src", "ip.dst", "icmp.type", "vlan.id"]);
    assert_eq!(rows.len(), 6, "{rows:?}");
    let (v1, v2) = (VM1.to_string(), VM2.to_string());
    let icmp: Vec<&Vec<String>> = rows.iter().filter(|r| !r[2].is_empty()).collect();
    assert!(
        icmp.iter()
            .any(|r| r[..3] == [v1.clone(), v2.clone(), "8".into()]),
        "no echo request in: {rows:?}"
    );
    assert!(
        icmp.iter()
            .any(|r| r[..3] == [v2.clone(), v1.clone(), "0".into()]),
        "no echo reply in: {rows:?}"
    );
    for r in &icmp {
        assert!(
            (r[0] == v1 && r[1] == v2 && r[2] == "8") || (r[0] == v2 && r[1] == v1 && r[2] == "0"),
            "unexpected frame: {r:?}"
        );
        assert_eq!(r[3], "", "a tag on an access port: {r:?}");
    }

    // p2 `in`: only what vm2 sends, the replies.
    let file = dir.0.join("p2.pcap");
    let child = capture_cmd(
        &s,
        &[
            "p2",
            "--filter",
            "in",
            "-c",
            "3",
            "-w",
            file.to_str().unwrap(),
        ],
    );
    let (out, sent, answered) = ping_until_exit(&p1, VM2, fast, child);
    assert!(out.status.success(), "capture p2: {}", stderr(&out));
    mostly_answered("p2 in", sent, answered, &s);
    let rows = tshark_fields(&file, &["eth.src", "ip.src", "icmp.type"]);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in &rows {
        assert_eq!(r[0], "02:2f:00:00:00:02", "not sent by vm2: {rows:?}");
        if !r[2].is_empty() {
            assert_eq!(r[1..], [v2.clone(), "0".into()], "{rows:?}");
        }
    }

    // p3 (trunk) `out` to stdout: the flooded echo requests to the ghost, tagged VID 10.
    let child = capture_cmd(&s, &["p3", "--filter", "out", "-c", "4", "-w", "-"]);
    let (out, sent, _) = ping_until_exit(&p1, GHOST, Duration::from_millis(50), child);
    assert!(out.status.success(), "capture p3: {}", stderr(&out));
    assert!(sent > 0);
    let file = dir.0.join("p3.pcap");
    std::fs::write(&file, &out.stdout).unwrap();
    let rows = tshark_fields(&file, &["vlan.id", "ip.src", "ip.dst", "icmp.type"]);
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        assert_eq!(r[0], "10", "no VID 10 tag on the trunk: {rows:?}");
    }
    let g = GHOST.to_string();
    assert!(
        rows.iter()
            .any(|r| r[1..] == [v1.clone(), g.clone(), "8".into()]),
        "no tagged echo request to the ghost: {rows:?}"
    );

    // Without a count: runs until Ctrl-C; meanwhile the port cannot be captured twice.
    let file = dir.0.join("p1-stop.pcap");
    let mut child = capture_cmd(&s, &["p1", "-w", file.to_str().unwrap()]);
    // The file appears once the switch has accepted the capture.
    let started = wait_until(DEADLINE, Duration::from_millis(50), || {
        std::fs::metadata(&file).is_ok_and(|m| m.len() >= 24)
    });
    assert!(started, "the capture did not start");
    let busy = s.ctl(&["capture", "p1", "-c", "1", "-w", "-"]);
    assert!(!busy.status.success());
    assert!(
        stderr(&busy).contains("already running"),
        "{}",
        stderr(&busy)
    );
    let ok = netrun::pings(&p1, VM2, 5);
    assert!(
        ok >= 4,
        "{ok}/5 pings answered while capturing\n{}",
        s.log()
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let done = wait_until(DEADLINE, Duration::from_millis(50), || {
        child.try_wait().unwrap().is_some()
    });
    if !done {
        let _ = child.kill();
        panic!("capture did not stop on SIGINT");
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "capture stopped: {}", stderr(&out));
    assert!(stderr(&out).contains("captured on p1"), "{}", stderr(&out));
    let rows = tshark_fields(&file, &["icmp.type"]);
    assert!(
        rows.len() >= 8,
        "{} frames for 5 answered pings",
        rows.len()
    );
    // The port is free again.
    let child = capture_cmd(&s, &["p1", "-c", "1", "-w", "-"]);
    let (out, _, _) = ping_until_exit(&p1, VM2, fast, child);
    assert!(out.status.success(), "capture after stop: {}", stderr(&out));

    // An unknown port, a clear error.
    let out = s.ctl(&["capture", "p9", "-w", "-"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));

    let ok = netrun::pings(&p1, VM2, 5);
    assert!(
        ok >= 4,
        "{ok}/5 pings answered after the captures\n{}",
        s.log()
    );
    s.stop();
}

#[test]
fn capture_with_two_workers() {
    if !root_or_skip("capture_with_two_workers") {
        return;
    }
    let cores = netrun::cores();
    if cores.len() < 2 {
        eprintln!("SKIPPED: capture_with_two_workers needs 2 cores");
        return;
    }
    let sw = NetNs::new(PREFIX).unwrap();
    let vm1 = NetNs::new(PREFIX).unwrap();
    let vm2 = NetNs::new(PREFIX).unwrap();
    for (vm, port, addr) in [(&vm1, "p1", VM1), (&vm2, "p2", VM2)] {
        netrun::veth_queues(vm, "eth0", &sw, port, 2);
        vm.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
        vm.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])
            .unwrap();
        vm.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
    }
    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let cfg = netns_config(&socket)
        .replace("workers = 1", "workers = 2")
        .replace(
        "\n[[port]]\nname = \"p3\"\nifname = \"p3\"\nmode = \"trunk\"\nvlans = { 10 = \"a\" }\n",
        "",
    );
    assert!(!cfg.contains("p3"), "{cfg}");
    let s = Vswitch::start_on(&sw, &dir.0, "sw", &cfg, &cores[cores.len() - 2..]);
    let p1 = Pinger::open(&vm1, 0x4702).unwrap();
    netrun::warm_up(&p1, VM2);

    let file = dir.0.join("p1.pcap");
    let mut child = capture_cmd(&s, &["p1", "--filter", "in", "-w", file.to_str().unwrap()]);
    let started = wait_until(DEADLINE, Duration::from_millis(50), || {
        std::fs::metadata(&file).is_ok_and(|m| m.len() >= 24)
    });
    assert!(started, "the capture did not start");
    netrun::every_queue_forwards(&s, (&vm2, VM2), (&vm1, VM1), 4747, "two workers capturing");
    // Until the last datagrams are in the file (the client flushes when the stream
    // pauses); the stop below would flush them anyway.
    let udp = || {
        tshark_fields(&file, &["udp.dstport", "data.data"])
            .into_iter()
            .filter(|r| r[0] == "4747")
            .map(|r| r[1].clone())
            .collect::<std::collections::BTreeSet<String>>()
    };
    wait_until(DEADLINE, Duration::from_millis(200), || udp().len() >= 64);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let done = wait_until(DEADLINE, Duration::from_millis(50), || {
        child.try_wait().unwrap().is_some()
    });
    if !done {
        let _ = child.kill();
        panic!("capture did not stop on SIGINT");
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "capture: {}", stderr(&out));
    // Each datagram carries its number: all 64, whichever worker received it.
    let payloads = udp();
    let want: std::collections::BTreeSet<String> = (0..64u32).map(|i| format!("{i:08x}")).collect();
    assert_eq!(payloads, want, "{}", stderr(&out));
    s.stop();
}
