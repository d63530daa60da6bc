//! `vswitch run --forward-only` on AF_XDP veth ports: the same workers, sockets and
//! control socket as the switch, but bursts move between port pairs (p1 <-> p2) with no
//! switching, and the odd port out (p3) drops what it receives, counted as `no_peer`.
//! `ctl show` reports the mode, `ctl stats` the per-port and per-worker counters,
//! nothing is learned, switching changes are refused (a reload too; the unchanged file
//! reloads as no change, `--forward-only` kept), and SIGTERM leaves no XDP program
//! behind.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns h1 eth0 198.18.12.1/24 ══ veth ══ p1 ┐
//!  ns h2 eth0 198.18.12.2/24 ══ veth ══ p2 ┼ vswitch run --forward-only (ns sw)
//!  ns h3 eth0 198.18.12.3/24 ══ veth ══ p3 ┘   (no peer)
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use dataplane::control::proto::{Reply, XdpMode};
use netrun::{cores, pings, vm, TempDir, Vswitch};
use vswitch_tests::netns::{root_or_skip, wait_until, NetNs};
use vswitch_tests::ping::Pinger;

const PREFIX: &str = "vsw-fwd";
const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 12, 1);
const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 12, 2);
const H3: Ipv4Addr = Ipv4Addr::new(198, 18, 12, 3);

fn config(socket: &std::path::Path) -> String {
    let mut c = format!(
        "[switch]\nworkers = 1\ncontrol_socket = \"{}\"\n\n[[network]]\nname = \"n\"\nsegment = \"local\"\n",
        socket.display()
    );
    for p in ["p1", "p2", "p3"] {
        c.push_str(&format!(
            "\n[[port]]\nname = \"{p}\"\nifname = \"{p}\"\nmode = \"access\"\nnetwork = \"n\"\n"
        ));
    }
    c
}

#[test]
fn forward_only_moves_frames_between_veth_pairs() {
    if !root_or_skip("forward_only_moves_frames_between_veth_pairs") {
        return;
    }
    let sw = NetNs::new(PREFIX).unwrap();
    let h1 = NetNs::new(PREFIX).unwrap();
    let h2 = NetNs::new(PREFIX).unwrap();
    let h3 = NetNs::new(PREFIX).unwrap();
    vm(
        &sw,
        "p1",
        &h1,
        "02:0d:00:00:00:01",
        &format!("{H1}/24"),
        1500,
    );
    vm(
        &sw,
        "p2",
        &h2,
        "02:0d:00:00:00:02",
        &format!("{H2}/24"),
        1500,
    );
    vm(
        &sw,
        "p3",
        &h3,
        "02:0d:00:00:00:03",
        &format!("{H3}/24"),
        1500,
    );
    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let all = cores();
    let s = Vswitch::start_with(
        &sw,
        &dir.0,
        "sw",
        &config(&socket),
        &all[all.len() - 1..],
        &["--forward-only"],
    );
    let log = s.log();
    assert!(
        log.contains("forward-only mode, no switching: p1<->p2, p3 (no peer: dropped)"),
        "{log}"
    );

    // h1 <-> h2: ARP and ICMP cross the pair untouched (once the veths settle: a veth
    // reports no carrier for a moment after its XDP program is attached).
    let p1 = Pinger::open(&h1, 0x1201).unwrap();
    let settled = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        pings(&p1, H2, 1) == 1
    });
    assert!(
        settled,
        "h1 → h2: no answer in 10 s
{}",
        s.log()
    );
    let ok = pings(&p1, H2, 10);
    assert!(ok >= 9, "h1 → h2: {ok}/10\n{}", s.log());
    // UDP in a burst, every datagram arrives.
    let rx = h2
        .run_in(|| UdpSocket::bind(SocketAddrV4::new(H2, 7200)))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let tx = h1
        .run_in(|| UdpSocket::bind(SocketAddrV4::new(H1, 0)))
        .unwrap()
        .unwrap();
    let mut got = 0;
    for i in 0..200u32 {
        tx.send_to(&i.to_be_bytes(), SocketAddrV4::new(H2, 7200))
            .unwrap();
        if i % 20 == 19 {
            let mut buf = [0u8; 16];
            while got < i + 1 && rx.recv(&mut buf).is_ok() {
                got += 1;
            }
        }
    }
    assert_eq!(got, 200, "UDP h1 → h2\n{}", s.log());
    // h3 is the odd port out: nothing it sends arrives anywhere.
    let p3 = Pinger::open(&h3, 0x1203).unwrap();
    assert_eq!(pings(&p3, H1, 3), 0);

    let Reply::Show(show) = s.ctl_json(&["show"]) else {
        panic!("show: not a show reply")
    };
    assert_eq!(
        (show.datapath.as_str(), show.mode.as_str()),
        ("af_xdp", "forward-only")
    );
    assert!(show
        .ports
        .iter()
        .all(|p| p.xdp_mode == Some(XdpMode::Native)));
    let text = s.ctl_text(&["show"]);
    assert!(
        text.starts_with("vswitch (af_xdp, forward-only):"),
        "{text}"
    );
    let stats = s.stats();
    eprintln!("{}", s.ctl_text(&["stats"]));
    let port = |n: &str| stats.ports.iter().find(|p| p.name == n).unwrap().clone();
    assert!(port("p1").rx_frames >= 211, "{:?}", port("p1"));
    assert_eq!(port("p1").rx_frames, port("p2").tx_frames);
    assert_eq!(port("p2").rx_frames, port("p1").tx_frames);
    assert!(port("p3").rx_frames >= 1 && port("p3").tx_frames == 0);
    assert_eq!(
        stats.drops.get("no_peer").copied(),
        Some(port("p3").rx_frames)
    );
    assert_eq!(stats.totals.learned, 0);
    let w = &stats.workers[0];
    let rx_all: u64 = stats.ports.iter().map(|p| p.rx_frames).sum();
    assert_eq!(w.packets, rx_all);
    assert!(w.batches >= 1 && w.batches <= w.packets, "{w:?}");
    assert!(
        w.busy_ns > 0 && w.idle_ns > 0 && w.ns_per_packet.is_some(),
        "{w:?}"
    );
    let Reply::Fdb(fdb) = s.ctl_json(&["fdb", "show"]) else {
        panic!("fdb show: not an fdb reply")
    };
    assert!(fdb.entries.is_empty(), "{fdb:?}");
    let flush = s.ctl(&["fdb", "flush"]);
    assert!(!flush.status.success());
    assert!(
        String::from_utf8_lossy(&flush.stderr).contains("forward-only"),
        "{}",
        String::from_utf8_lossy(&flush.stderr)
    );

    // A reload keeps `--forward-only` (given on the command line, not in the file): the
    // same file is no change, by `ctl reload` and by SIGHUP; a changed one is refused.
    let out = s.ctl_text(&["reload"]);
    assert!(out.contains(": no change"), "{out}");
    s.signal("HUP");
    let logged = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        s.log().contains("SIGHUP: reloaded")
    });
    assert!(logged, "{}", s.log());
    let more = format!(
        "{}\n[[network]]\nname = \"m\"\nsegment = \"local\"\n",
        config(&socket)
    );
    std::fs::write(dir.0.join("sw.toml"), more).unwrap();
    let out = s.ctl(&["reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("forward-only"),
        "{err}"
    );
    let Reply::Show(after) = s.ctl_json(&["show"]) else {
        panic!("show: not a show reply")
    };
    assert_eq!(after, show, "a reload changed the forward-only switch");
    let ok = pings(&p1, H2, 5);
    assert!(ok >= 4, "h1 → h2 after the reloads: {ok}/5\n{}", s.log());

    s.stop();
    for p in ["p1", "p2", "p3"] {
        let l = sw.ip(&["-d", "link", "show", "dev", p]).unwrap();
        assert!(!l.contains("xdp"), "XDP program left on {p}: {l}");
    }
}
