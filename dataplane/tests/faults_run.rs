//! Faults and changes under a running `vswitch run`, each over real veths and AF_XDP in
//! network namespaces, each showing that what the fault does not touch keeps forwarding:
//!
//! - `reload_while_forwarding`: the configuration file is changed and reloaded by SIGHUP
//!   (a network added before the others, a port added to another network) and by
//!   `ctl reload` (both removed again) while vm1 pings vm2 on an untouched network every
//!   50 ms: no ping is lost, and a MAC learned once on that network (a "silent" host that
//!   sends one frame) is still in `ctl fdb show`, aged, not learned anew. Then files with
//!   a syntax error, an invalid value and a changed `workers` are refused, by `ctl reload`
//!   with the validator's file, line and key and by SIGHUP in the log, and change nothing.
//! - `link_down_up_and_first_port_recreated`: p2's netdev set down and up while p1 ↔ p3
//!   keep forwarding; then the netdev of the *first* configured port, p1, deleted and
//!   created again, twice, while p2 ↔ p3 keep forwarding: p1 is re-attached and forwards
//!   (`first_port_recreated_with_two_workers`: the same with two workers on two-queue
//!   veths, every queue of the re-created p1 forwarding).
//!   (The first port's socket used to own the worker's shared UMEM registration, and the
//!   kernel refused to bind anything to it once that socket was gone: `EBADF`.)
//! - `kill9_and_restart`: `kill -9` leaves the XDP programs and the control socket behind;
//!   the same command starts again (stale program replaced, stale socket removed) and
//!   forwards.
//! - `dead_and_vanishing_vteps`: a VXLAN network with three remote VTEPs behind an
//!   underlay bridge: two kernel VTEPs (A and B) and one address nobody answers ARP for
//!   (DEAD). Frames toward DEAD are dropped and counted (`neighbor_unresolved`) while a
//!   local network on the same switch and the VTEP A keep forwarding; then B's underlay
//!   link is deleted after traffic flowed: A and the local network are unaffected, the
//!   frames toward B are counted once its entry fails, nothing crashes.
//!
//! The tests take turns (a static mutex): each runs a busy-polling worker, and the
//! machine may have two cores only. Needs root; otherwise each prints `SKIPPED: needs
//! root` and passes.
//!
//! ```text
//!  ns vmN eth0 198.18.30.N/24 ══ veth ══ pN ┐ vswitch run (ns sw)
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use dataplane::control::proto::{FdbRow, LinkState, Reply, ShowReply};
use netrun::{cores, pings, vm, TempDir, Vswitch};
use vswitch_tests::netns::{root_or_skip, veth_pair, wait_until, NetNs};
use vswitch_tests::ping::Pinger;
use vswitch_tests::rawsock::RawSocket;

const PREFIX: &str = "vsw-flt";

/// One test at a time: each runs a busy-polling worker.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 30, n)
}

fn mac(n: u8) -> String {
    format!("02:0f:00:00:00:{n:02x}")
}

/// A MAC that sends one frame and then stays silent.
const SILENT: &str = "02:0f:00:00:00:99";

fn show(sw: &Vswitch) -> ShowReply {
    let Reply::Show(s) = sw.ctl_json(&["show"]) else {
        panic!("show: not a show reply")
    };
    s
}

fn link(sw: &Vswitch, port: &str) -> LinkState {
    show(sw)
        .ports
        .iter()
        .find(|p| p.name == port)
        .map_or(LinkState::Unknown, |p| p.link)
}

fn fdb(sw: &Vswitch) -> Vec<FdbRow> {
    let Reply::Fdb(f) = sw.ctl_json(&["fdb", "show"]) else {
        panic!("fdb show: not an fdb reply")
    };
    f.entries
}

fn fdb_row(sw: &Vswitch, mac: &str) -> Option<FdbRow> {
    fdb(sw).into_iter().find(|r| r.mac == mac)
}

fn drops(sw: &Vswitch, reason: &str) -> u64 {
    let st = sw.stats();
    st.drops.get(reason).copied().unwrap_or(0)
}

/// Whether `ifname` in `ns` has an XDP program.
fn has_xdp(ns: &NetNs, ifname: &str) -> bool {
    ns.ip(&["-d", "link", "show", "dev", ifname])
        .is_ok_and(|l| l.contains("xdp"))
}

/// `[switch]` with the test's control socket.
fn switch_section(socket: &Path, workers: usize) -> String {
    format!(
        "[switch]\nworkers = {workers}\ncontrol_socket = \"{}\"\n",
        socket.display()
    )
}

fn network(name: &str) -> String {
    format!("\n[[network]]\nname = \"{name}\"\nsegment = \"local\"\n")
}

fn access(port: &str, net: &str) -> String {
    format!("\n[[port]]\nname = \"{port}\"\nifname = \"{port}\"\nmode = \"access\"\nnetwork = \"{net}\"\n")
}

/// How many of `n` echo requests from `p` to `to` were answered, each given 2 s: a
/// loaded machine may delay an answer, and these checks are about loss, not latency.
fn answered(p: &Pinger, to: Ipv4Addr, n: u16) -> u16 {
    (0..n)
        .filter(|&seq| {
            p.ping(to, seq, 56, Duration::from_secs(2))
                .unwrap()
                .is_some()
        })
        .count() as u16
}

/// Pings `to` from `from` every 50 ms (2 s timeout each) until `stop`; counts sent and
/// answered.
fn ping_loop(from: &NetNs, to: Ipv4Addr, ident: u16, stop: &AtomicBool, sent: &AtomicU32) -> u32 {
    let p = Pinger::open(from, ident).unwrap();
    let mut ok = 0;
    let mut seq = 0u16;
    while !stop.load(Ordering::Relaxed) {
        seq = seq.wrapping_add(1);
        sent.fetch_add(1, Ordering::Relaxed);
        if p.ping(to, seq, 56, Duration::from_secs(2))
            .unwrap()
            .is_some()
        {
            ok += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ok
}

/// Waits until `ctl reload` or SIGHUP has logged `needle` (the log grows); panics after
/// 10 s.
fn wait_log(sw: &Vswitch, needle: &str, count: usize) {
    let ok = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        sw.log().matches(needle).count() >= count
    });
    assert!(ok, "{needle:?} not logged {count} time(s):\n{}", sw.log());
}

#[test]
fn reload_while_forwarding() {
    if !root_or_skip("reload_while_forwarding") {
        return;
    }
    let _turn = serial();
    let sw = NetNs::new(PREFIX).unwrap();
    let vms: Vec<NetNs> = (1..=4).map(|_| NetNs::new(PREFIX).unwrap()).collect();
    for (i, v) in vms.iter().enumerate() {
        let n = i as u8 + 1;
        vm(
            &sw,
            &format!("p{n}"),
            v,
            &mac(n),
            &format!("{}/24", ip(n)),
            1500,
        );
    }
    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let file = dir.0.join("sw.toml");
    // v1: n = {p1, p2}, m = {p3}; p4's veth exists but is not configured.
    let v1 = format!(
        "{}{}{}{}{}{}",
        switch_section(&socket, 1),
        network("n"),
        network("m"),
        access("p1", "n"),
        access("p2", "n"),
        access("p3", "m")
    );
    let s = Vswitch::start(&sw, &dir.0, "sw", &v1, *cores().last().unwrap());
    let p1 = Pinger::open(&vms[0], 0x3001).unwrap();
    netrun::warm_up(&p1, ip(2));
    let before = show(&s);
    let vlan_n = before
        .networks
        .iter()
        .find(|n| n.name == "n")
        .unwrap()
        .local_vlan;

    // A host on n that sends one frame, learned on p1, and is never heard again.
    let raw = RawSocket::open(&vms[0], "eth0").unwrap();
    let mut frame = vec![0xff; 6];
    frame.extend(vswitch_tests::netns::parse_mac(SILENT).unwrap());
    frame.extend([0x88, 0xb5]);
    frame.resize(60, 0);
    raw.send(&frame).unwrap();
    let learned = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        fdb_row(&s, SILENT).is_some()
    });
    assert!(learned, "the silent MAC was not learned\n{}", s.log());

    let stop = AtomicBool::new(false);
    let sent = AtomicU32::new(0);
    std::thread::scope(|sc| {
        let pinger = sc.spawn(|| ping_loop(&vms[0], ip(2), 0x3002, &stop, &sent));
        std::thread::sleep(Duration::from_secs(3));

        // SIGHUP: network "o" added *before* n (n keeps its allocated local VLAN), p4
        // added to m (m changes: its MACs may go, n's stay).
        let v2 = format!(
            "{}{}{}{}{}{}{}{}",
            switch_section(&socket, 1),
            network("o"),
            network("n"),
            network("m"),
            access("p1", "n"),
            access("p2", "n"),
            access("p3", "m"),
            access("p4", "m")
        );
        std::fs::write(&file, &v2).unwrap();
        s.signal("HUP");
        wait_log(&s, "SIGHUP: reloaded", 1);
        let log = s.log();
        assert!(
            log.contains("networks added: o") && log.contains("ports added: p4"),
            "{log}"
        );
        let after = show(&s);
        assert!(after.ports.iter().any(|p| p.name == "p4"));
        let n = after.networks.iter().find(|n| n.name == "n").unwrap();
        assert_eq!(n.local_vlan, vlan_n, "n's local VLAN moved");
        let p3 = Pinger::open(&vms[2], 0x3003).unwrap();
        let reached = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            pings(&p3, ip(4), 1) == 1
        });
        assert!(reached, "vm3 → vm4 after the reload added p4\n{}", s.log());
        let row = fdb_row(&s, SILENT).expect("the silent MAC of n is gone after SIGHUP");
        assert_eq!(row.network, "n");
        assert_eq!(row.port.as_deref(), Some("p1"));
        assert!(row.age_secs >= 3, "the silent MAC's entry is new: {row:?}");

        // ctl reload: back to v1 (o and p4 removed).
        std::fs::write(&file, &v1).unwrap();
        let out = s.ctl_text(&["reload"]);
        assert!(
            out.contains("networks removed: o") && out.contains("ports removed: p4"),
            "{out}"
        );
        assert!(!show(&s).ports.iter().any(|p| p.name == "p4"));
        assert!(!has_xdp(&sw, "p4"), "p4 still has its XDP program");
        let row = fdb_row(&s, SILENT).expect("the silent MAC of n is gone after ctl reload");
        assert!(row.age_secs >= 3, "the silent MAC's entry is new: {row:?}");
        // The same file again: nothing to do.
        let out = s.ctl_text(&["reload"]);
        assert!(out.contains("no change"), "{out}");

        // Refused files: each names the file, the line and the key, and changes nothing.
        let good = show(&s);
        let fname = file.display().to_string();
        let bad: [(String, &str, &str); 3] = [
            (
                format!("{v1}\n[[network]\nname = \"x\"\n"),
                "TOML syntax",
                ":",
            ),
            (
                format!("{v1}{}", access("p4", "nope")),
                "network \"nope\" does not exist",
                "key \"network\"",
            ),
            (
                v1.replace("workers = 1", "workers = 2"),
                "changed from 1 to 2",
                "[switch]: key \"workers\"",
            ),
        ];
        for (text, what, key) in &bad {
            std::fs::write(&file, text).unwrap();
            let out = s.ctl(&["reload"]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "a bad file was accepted: {text}");
            assert!(
                err.contains(&format!("{fname}:")) && err.contains(what) && err.contains(key),
                "ctl reload: {err}"
            );
            let line = err
                .split(&format!("{fname}:"))
                .nth(1)
                .and_then(|r| r.split(':').next())
                .and_then(|l| l.parse::<u32>().ok());
            assert!(line.is_some(), "no line number: {err}");
            assert_eq!(show(&s), good, "a refused reload changed the switch");
        }
        s.signal("HUP");
        wait_log(&s, "SIGHUP: reload refused, nothing changed", 1);
        assert!(s.log().contains("key \"workers\""), "{}", s.log());
        assert_eq!(show(&s), good, "a refused SIGHUP changed the switch");
        let row = fdb_row(&s, SILENT).expect("the silent MAC is gone");
        assert!(row.age_secs >= 3, "{row:?}");

        stop.store(true, Ordering::Relaxed);
        let ok = pinger.join().unwrap();
        let sent = sent.load(Ordering::Relaxed);
        eprintln!("vm1 → vm2 during the reloads: {ok}/{sent} answered");
        assert!(sent >= 20, "only {sent} pings sent");
        assert_eq!(ok, sent, "pings lost on n during reloads\n{}", s.log());
    });
    eprintln!("{}", s.log());
    std::fs::write(&file, &v1).unwrap();
    s.stop();
    for p in ["p1", "p2", "p3", "p4"] {
        assert!(!has_xdp(&sw, p), "XDP program left on {p}");
    }
}

/// A VM behind `port` in `sw` as [`vm`] makes it (number `n`: its MAC and address), its
/// veth with `queues` queues each way (one per worker).
fn host(sw: &NetNs, port: &str, v: &NetNs, n: u8, queues: u32) {
    let addr = format!("{}/24", ip(n));
    if queues == 1 {
        return vm(sw, port, v, &mac(n), &addr, 1500);
    }
    netrun::veth_queues(v, "eth0", sw, port, queues);
    v.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    v.ip(&["link", "set", "eth0", "address", &mac(n)]).unwrap();
    v.ip(&["addr", "add", &addr, "dev", "eth0"]).unwrap();
    v.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
}

/// n = {p1, p2, p3} with `workers` workers.
fn three_vms(workers: usize) -> (NetNs, Vec<NetNs>, TempDir, String) {
    let sw = NetNs::new(PREFIX).unwrap();
    let vms: Vec<NetNs> = (1..=3).map(|_| NetNs::new(PREFIX).unwrap()).collect();
    for (i, v) in vms.iter().enumerate() {
        let n = i as u8 + 1;
        host(&sw, &format!("p{n}"), v, n, workers as u32);
    }
    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let cfg = format!(
        "{}{}{}{}{}",
        switch_section(&socket, workers),
        network("n"),
        access("p1", "n"),
        access("p2", "n"),
        access("p3", "n")
    );
    (sw, vms, dir, cfg)
}

#[test]
fn link_down_up_and_first_port_recreated() {
    if !root_or_skip("link_down_up_and_first_port_recreated") {
        return;
    }
    let _turn = serial();
    link_and_first_port(1);
}

/// Each worker has its own UMEM, whose first socket is on its queue of p1.
#[test]
fn first_port_recreated_with_two_workers() {
    if !root_or_skip("first_port_recreated_with_two_workers") {
        return;
    }
    if cores().len() < 2 {
        eprintln!("SKIPPED: first_port_recreated_with_two_workers needs 2 cores");
        return;
    }
    let _turn = serial();
    link_and_first_port(2);
}

fn link_and_first_port(workers: usize) {
    let (sw, vms, dir, cfg) = three_vms(workers);
    let all = cores();
    let s = Vswitch::start_on(&sw, &dir.0, "sw", &cfg, &all[all.len() - workers..]);
    let p1 = Pinger::open(&vms[0], 0x3101).unwrap();
    let p2 = Pinger::open(&vms[1], 0x3102).unwrap();
    netrun::warm_up(&p1, ip(2));
    netrun::warm_up(&p1, ip(3));

    // p2 down: p1 ↔ p3 keep forwarding; up: p2 forwards again.
    sw.ip(&["link", "set", "p2", "down"]).unwrap();
    let down = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        link(&s, "p2") == LinkState::Down
    });
    assert!(down, "p2 never reported down\n{}", s.log());
    let ok = answered(&p1, ip(3), 10);
    assert!(ok >= 9, "vm1 → vm3 with p2 down: {ok}/10\n{}", s.log());
    sw.ip(&["link", "set", "p2", "up"]).unwrap();
    let back = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        link(&s, "p2") == LinkState::Up && pings(&p1, ip(2), 1) == 1
    });
    assert!(back, "vm1 → vm2 after p2 came up\n{}", s.log());

    // The first configured port's netdev, deleted and created again, twice.
    for round in 1..=2 {
        sw.ip(&["link", "del", "p1"]).unwrap();
        let down = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
            link(&s, "p1") == LinkState::Down
        });
        assert!(down, "round {round}: p1 never reported down\n{}", s.log());
        let ok = answered(&p2, ip(3), 10);
        assert!(
            ok >= 9,
            "round {round}: vm2 → vm3 with p1 gone: {ok}/10\n{}",
            s.log()
        );
        host(&sw, "p1", &vms[0], 1, workers as u32);
        let back = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            link(&s, "p1") == LinkState::Up && pings(&p1, ip(2), 1) == 1
        });
        assert!(
            back,
            "round {round}: vm1 → vm2 after re-creating p1\n{}",
            s.log()
        );
        let ok = answered(&p1, ip(3), 10);
        assert!(
            ok >= 9,
            "round {round}: vm1 → vm3 after re-creating p1: {ok}/10\n{}",
            s.log()
        );
        let log = s.log();
        assert_eq!(
            log.matches("port on p1: netdev back, re-attached").count(),
            round,
            "{log}"
        );
        assert!(!log.contains("EBADF") && !log.contains("Bad file"), "{log}");
        if workers > 1 {
            netrun::every_queue_forwards(
                &s,
                (&vms[1], ip(2)),
                (&vms[0], ip(1)),
                7300 + round as u16,
                "UDP from vm1 after re-creating p1",
            );
        }
    }
    s.stop();
    for p in ["p1", "p2", "p3"] {
        assert!(!has_xdp(&sw, p), "XDP program left on {p}");
    }
}

#[test]
fn kill9_and_restart() {
    if !root_or_skip("kill9_and_restart") {
        return;
    }
    let _turn = serial();
    let (sw, vms, dir, cfg) = three_vms(1);
    let core = *cores().last().unwrap();
    let s = Vswitch::start(&sw, &dir.0, "sw", &cfg, core);
    let p1 = Pinger::open(&vms[0], 0x3201).unwrap();
    netrun::warm_up(&p1, ip(2));
    let socket = s.socket.clone();
    s.kill();
    assert!(socket.exists(), "kill -9 removed the control socket?");
    // libxdp's program stays attached (the next run replaces it); the fast path's is
    // attached through a BPF link, which the kernel closes with the process.
    assert_eq!(
        has_xdp(&sw, "p1"),
        !vswitch_tests::netns::fastpath(),
        "XDP program after kill -9"
    );
    // vm1 → vm2 stops with the switch.
    assert_eq!(pings(&p1, ip(2), 2), 0, "forwarding without a switch");

    let s = Vswitch::start(&sw, &dir.0, "sw", &cfg, core);
    let log = s.log();
    // (Nothing is left of the fast path's to replace.)
    let stale = if vswitch_tests::netns::fastpath() {
        0
    } else {
        3
    };
    assert_eq!(
        log.matches("replaced a stale XDP program").count(),
        stale,
        "stale programs not replaced on every port:\n{log}"
    );
    netrun::warm_up(&p1, ip(2));
    let ok = answered(&p1, ip(3), 10);
    assert!(ok >= 9, "vm1 → vm3 after the restart: {ok}/10\n{}", s.log());
    s.stop();
    assert!(!socket.exists(), "control socket left after SIGTERM");
    for p in ["p1", "p2", "p3"] {
        assert!(!has_xdp(&sw, p), "XDP program left on {p}");
    }
}

const VNI: u32 = 5001;
const LOCAL_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 1);
const VTEP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 2);
const VTEP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 3);
const VTEP_DEAD: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 9);
/// Tenant addresses on the VXLAN network: the VM behind vswitch, the hosts behind A, B.
const T_VM: Ipv4Addr = Ipv4Addr::new(198, 19, 40, 1);
const T_A: Ipv4Addr = Ipv4Addr::new(198, 19, 40, 2);
const T_B: Ipv4Addr = Ipv4Addr::new(198, 19, 40, 3);
/// A tenant address whose MAC is statically behind the dead VTEP.
const T_DEAD: Ipv4Addr = Ipv4Addr::new(198, 19, 40, 99);
const DEAD_MAC: &str = "02:0d:00:00:00:99";

/// A kernel VTEP in `kv`: `ul0` (already in the fabric) with `vtep`, a `vxlan0` toward
/// vswitch's VTEP in bridge `br0`, which has the tenant address `host` (the "host"
/// behind the VTEP is the namespace itself).
fn kernel_vtep(kv: &NetNs, vtep: Ipv4Addr, host: Ipv4Addr) {
    kv.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    kv.ip(&["addr", "add", &format!("{vtep}/24"), "dev", "ul0"])
        .unwrap();
    kv.ethtool(&["-K", "ul0", "tx", "off"]).unwrap();
    let (vni, local, remote) = (VNI.to_string(), vtep.to_string(), LOCAL_VTEP.to_string());
    kv.ip(&[
        "link", "add", "vxlan0", "type", "vxlan", "id", &vni, "dstport", "4789", "local", &local,
        "remote", &remote, "dev", "ul0",
    ])
    .unwrap();
    kv.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
    kv.ip(&["link", "set", "vxlan0", "master", "br0"]).unwrap();
    kv.ip(&["link", "set", "vxlan0", "up"]).unwrap();
    kv.ip(&["link", "set", "br0", "mtu", "1450", "up"]).unwrap();
    kv.ip(&["addr", "add", &format!("{host}/24"), "dev", "br0"])
        .unwrap();
}

fn neigh_state(sw: &Vswitch, vtep: Ipv4Addr) -> Option<String> {
    let Reply::Neigh(n) = sw.ctl_json(&["neigh", "show"]) else {
        panic!("neigh show: not a neigh reply")
    };
    n.entries
        .into_iter()
        .find(|e| e.ip == vtep)
        .map(|e| e.state)
}

#[test]
fn dead_and_vanishing_vteps() {
    if !root_or_skip("dead_and_vanishing_vteps") {
        return;
    }
    let _turn = serial();
    let sw = NetNs::new(PREFIX).unwrap();
    let fab = NetNs::new(PREFIX).unwrap();
    let kva = NetNs::new(PREFIX).unwrap();
    let kvb = NetNs::new(PREFIX).unwrap();
    let vm0 = NetNs::new(PREFIX).unwrap();
    let vm1 = NetNs::new(PREFIX).unwrap();
    let vm2 = NetNs::new(PREFIX).unwrap();
    // The underlay: a bridge in `fab` joining vswitch's ul0 and both kernel VTEPs.
    fab.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
    fab.ip(&["link", "set", "br0", "up"]).unwrap();
    for (ns, port) in [(&sw, "s0"), (&kva, "a0"), (&kvb, "b0")] {
        veth_pair(ns, "ul0", &fab, port).unwrap();
        vswitch_tests::netns::fastpath_napi(&fab, port).unwrap();
        fab.ip(&["link", "set", port, "master", "br0"]).unwrap();
    }
    sw.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    kernel_vtep(&kva, VTEP_A, T_A);
    kernel_vtep(&kvb, VTEP_B, T_B);
    vm(&sw, "pv", &vm0, &mac(0x10), &format!("{T_VM}/24"), 1450);
    vm(&sw, "p1", &vm1, &mac(1), &format!("{}/24", ip(1)), 1500);
    vm(&sw, "p2", &vm2, &mac(2), &format!("{}/24", ip(2)), 1500);

    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let cfg = format!(
        r#"{}
[underlay]
port = "uplink"
ifname = "ul0"
local_ip = "{LOCAL_VTEP}/24"

[[network]]
name = "t"
segment = "vxlan"
id = {VNI}
remote_vteps = ["{VTEP_A}", "{VTEP_B}", "{VTEP_DEAD}"]
{}{}{}{}
[[fdb]]
network = "t"
mac = "{DEAD_MAC}"
remote = "{VTEP_DEAD}"
"#,
        switch_section(&socket, 1),
        network("n"),
        access("pv", "t"),
        access("p1", "n"),
        access("p2", "n"),
    );
    let s = Vswitch::start(&sw, &dir.0, "sw", &cfg, *cores().last().unwrap());
    let pv = Pinger::open(&vm0, 0x3301).unwrap();
    let p1 = Pinger::open(&vm1, 0x3302).unwrap();
    netrun::warm_up(&p1, ip(2));
    netrun::warm_up(&pv, T_A);
    netrun::warm_up(&pv, T_B);
    // The underlay's MAC comes from ul0 (not in the file): a reload reads it again.
    let out = s.ctl_text(&["reload"]);
    assert!(out.contains(": no change"), "{out}");

    // DEAD never answers ARP: frames toward it wait, then are dropped and counted.
    let before = drops(&s, "neighbor_unresolved");
    vm0.ip(&[
        "neigh",
        "add",
        &T_DEAD.to_string(),
        "lladdr",
        DEAD_MAC,
        "dev",
        "eth0",
    ])
    .unwrap();
    let tx = vm0
        .run_in(|| std::net::UdpSocket::bind(SocketAddrV4::new(T_VM, 0)))
        .unwrap()
        .unwrap();
    for i in 0..50u32 {
        tx.send_to(&i.to_be_bytes(), SocketAddrV4::new(T_DEAD, 9))
            .unwrap();
    }
    // Meanwhile the local network and VTEP A forward.
    let ok = answered(&p1, ip(2), 10);
    assert!(
        ok >= 9,
        "vm1 → vm2 with DEAD unresolved: {ok}/10\n{}",
        s.log()
    );
    let ok = answered(&pv, T_A, 10);
    assert!(
        ok >= 9,
        "vm0 → A with DEAD unresolved: {ok}/10\n{}",
        s.log()
    );
    let counted = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        drops(&s, "neighbor_unresolved") >= before + 50
    });
    assert!(
        counted,
        "neighbor_unresolved {before} → {}\n{}",
        drops(&s, "neighbor_unresolved"),
        s.ctl_text(&["stats"])
    );
    let st = neigh_state(&s, VTEP_DEAD);
    assert!(
        matches!(st.as_deref(), Some("incomplete" | "failed")),
        "DEAD: {st:?}\n{}",
        s.ctl_text(&["neigh", "show"])
    );

    // B's underlay link goes away after traffic flowed.
    let st = neigh_state(&s, VTEP_B);
    assert!(
        matches!(st.as_deref(), Some("reachable" | "stale")),
        "B: {st:?}"
    );
    fab.ip(&["link", "del", "b0"]).unwrap();
    let before = drops(&s, "neighbor_unresolved");
    // Traffic toward B keeps coming; its entry goes stale (30 s), is probed and fails,
    // and from then on frames toward B are counted.
    let failed = wait_until(Duration::from_secs(60), Duration::from_millis(10), || {
        let _ = pings(&pv, T_B, 1);
        matches!(
            neigh_state(&s, VTEP_B).as_deref(),
            Some("failed" | "incomplete")
        ) && drops(&s, "neighbor_unresolved") > before
    });
    assert!(
        failed,
        "B never failed: {:?}\n{}",
        neigh_state(&s, VTEP_B),
        s.ctl_text(&["stats"])
    );
    let ok = answered(&p1, ip(2), 10);
    assert!(ok >= 9, "vm1 → vm2 with B gone: {ok}/10\n{}", s.log());
    let ok = answered(&pv, T_A, 10);
    assert!(ok >= 9, "vm0 → A with B gone: {ok}/10\n{}", s.log());
    assert_eq!(pings(&pv, T_B, 2), 0, "B answered after it vanished");
    eprintln!(
        "{}\n{}",
        s.ctl_text(&["neigh", "show"]),
        s.ctl_text(&["stats"])
    );
    s.stop();
    for p in ["pv", "p1", "p2", "ul0"] {
        assert!(!has_xdp(&sw, p), "XDP program left on {p}");
    }
}
