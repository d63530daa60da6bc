//! `vswitch run` with NAPI busy polling (`[switch] napi_busy_poll`): the NAPI ids of the
//! ports' queues are found (netdev generic netlink) and registered on the worker's
//! io_uring, the ports' NAPIs are tuned while the switch owns them and restored after,
//! the kernel's receive work for the ports runs in busy polls (the switch namespace's
//! `BusyPollRxPackets` grows, and busy polling runs only in the thread that asks for it:
//! the worker), traffic flows (ping, TCP both ways), and a re-created netdev's new NAPI
//! is registered again. With `napi_busy_poll = false` nothing of this happens.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns vm1 eth0 198.18.12.1/24 ══ veth ══ p1 ┐ vswitch run (ns sw), network n (access);
//!  ns vm2 eth0 198.18.12.2/24 ══ veth ══ p2 ┘ p1 with GRO on (its NAPI outlives XDP),
//!                                             p2 deleted and re-created while running
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use dataplane::xsk::{NapiInfo, Netdev};
use netrun::{cores, pings, tcp_transfer, vm, TempDir, Vswitch};
use vswitch_tests::netns::{root_or_skip, wait_until, NetNs};
use vswitch_tests::ping::Pinger;

const PREFIX: &str = "vsw-napi";
const VM1: Ipv4Addr = Ipv4Addr::new(198, 18, 12, 1);
const VM2: Ipv4Addr = Ipv4Addr::new(198, 18, 12, 2);

fn config(socket: &std::path::Path, busy_poll: bool) -> String {
    let mut c = format!(
        r#"
[switch]
workers = 1
control_socket = "{}"
napi_busy_poll = {busy_poll}
napi_busy_poll_usecs = 50

[[network]]
name = "n"
segment = "local"
"#,
        socket.display()
    );
    for p in ["p1", "p2"] {
        c.push_str(&format!(
            "\n[[port]]\nname = \"{p}\"\nifname = \"{p}\"\nmode = \"access\"\nnetwork = \"n\"\n"
        ));
    }
    c
}

/// The NAPIs of `ifname` in `ns`, as the netdev family reports them.
fn napis(ns: &NetNs, ifname: &str) -> Vec<NapiInfo> {
    let ifindex = ns.ifindex(ifname).unwrap();
    ns.run_in(|| Netdev::open().unwrap().napis(ifindex).unwrap())
        .unwrap()
}

/// `TcpExt: BusyPollRxPackets` of `ns`: frames received by NAPI busy polls.
fn busy_poll_rx(ns: &NetNs) -> u64 {
    let text = ns.proc_net("netstat").unwrap();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "BusyPollRxPackets")
        .map(|(_, v)| v.parse().unwrap())
        .expect("no BusyPollRxPackets in /proc/net/netstat")
}

/// The NAPI ids the log says the worker busy polls for `port` (the last such line).
fn logged_ids(log: &str, port: &str) -> Option<Vec<u32>> {
    let key = format!("port {port}: busy polling NAPI [");
    let line = log.lines().rev().find(|l| l.contains(&key))?;
    let rest = &line[line.find(&key)? + key.len()..];
    let list = &rest[..rest.find(']')?];
    Some(list.split(", ").map(|s| s.parse().unwrap()).collect())
}

/// True (after a loud SKIP line naming `test`) if the switch logged that this kernel
/// cannot busy poll through io_uring (disabled, or older than 6.13): nothing to check.
fn unsupported(test: &str, log: &str) -> bool {
    if !log.contains("NAPI busy polling off") {
        return false;
    }
    eprintln!("\nSKIPPED: {test}: no io_uring NAPI busy polling on this kernel:\n{log}\n");
    true
}

fn setup() -> (NetNs, NetNs, NetNs) {
    let sw = NetNs::new(PREFIX).unwrap();
    let vm1 = NetNs::new(PREFIX).unwrap();
    let vm2 = NetNs::new(PREFIX).unwrap();
    vm(
        &sw,
        "p1",
        &vm1,
        "02:0d:00:00:00:01",
        &format!("{VM1}/24"),
        1500,
    );
    vm(
        &sw,
        "p2",
        &vm2,
        "02:0d:00:00:00:02",
        &format!("{VM2}/24"),
        1500,
    );
    for p in ["p1", "p2"] {
        sw.ip(&["link", "set", p, "up"]).unwrap();
    }
    (sw, vm1, vm2)
}

#[test]
fn napi_ids_found_registered_and_traffic_flows() {
    if !root_or_skip("napi_ids_found_registered_and_traffic_flows") {
        return;
    }
    let (sw, vm1, vm2) = setup();
    // p1 has a NAPI before vswitch attaches (GRO on), and keeps it after: its settings
    // must come back. p2 gets its NAPI from vswitch's XDP program.
    sw.ethtool(&["-K", "p1", "gro", "on"]).unwrap();
    let before = napis(&sw, "p1");
    assert_eq!(before.len(), 1, "p1 with GRO on: {before:?}");
    assert!(napis(&sw, "p2").is_empty(), "p2 has a NAPI before XDP");

    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let core = *cores().last().unwrap();
    let s = Vswitch::start(&sw, &dir.0, "sw", &config(&socket, true), core);
    let log = s.log();
    if unsupported("napi_ids_found_registered_and_traffic_flows", &log) {
        return;
    }

    // The ids the worker registered are the ports' NAPIs, tuned while vswitch runs.
    for p in ["p1", "p2"] {
        let now = napis(&sw, p);
        let ids: Vec<u32> = now.iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 1, "{p}: {now:?}");
        assert_eq!(logged_ids(&log, p), Some(ids.clone()), "{p}:\n{log}");
        for n in &now {
            assert_eq!(n.defer_hard_irqs, Some(2), "{p}: {n:?}");
            assert_eq!(n.gro_flush_timeout, Some(2_000_000), "{p}: {n:?}");
            assert!(!n.is_threaded(), "{p}: {n:?}");
            assert!(
                log.contains(&format!("{p}: NAPI {}: napi_defer_hard_irqs", n.id)),
                "{p}: tuning not logged:\n{log}"
            );
        }
    }

    // Traffic flows, and the ports' receive work ran in busy polls.
    let rx0 = busy_poll_rx(&sw);
    let p1 = Pinger::open(&vm1, 0x1201).unwrap();
    netrun::warm_up(&p1, VM2);
    let ok = pings(&p1, VM2, 10);
    assert!(ok >= 9, "vm1 → vm2: {ok}/10\n{}", s.log());
    tcp_transfer(&vm2, SocketAddrV4::new(VM2, 5201), &vm1, 4 << 20);
    tcp_transfer(&vm1, SocketAddrV4::new(VM1, 5202), &vm2, 4 << 20);
    let rx1 = busy_poll_rx(&sw);
    assert!(
        rx1 - rx0 >= 1000,
        "BusyPollRxPackets {rx0} → {rx1}: the NAPIs were not busy polled\n{}",
        s.log()
    );

    // p2 re-created: its new NAPI is looked up and registered again. (Not p1: the
    // first port's socket holds the UMEM registration, and binding a new socket after
    // its netdev is gone fails with EBADF, a problem of the link following of its own.)
    let old = logged_ids(&s.log(), "p2").unwrap();
    sw.ip(&["link", "del", "p2"]).unwrap();
    vm(
        &sw,
        "p2",
        &vm2,
        "02:0d:00:00:00:02",
        &format!("{VM2}/24"),
        1500,
    );
    sw.ip(&["link", "set", "p2", "up"]).unwrap();
    let again = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        s.log()
            .lines()
            .any(|l| l.contains("port on p2 (re-attached): busy polling NAPI"))
    });
    assert!(again, "p2's new NAPI not registered:\n{}", s.log());
    let now: Vec<u32> = napis(&sw, "p2").iter().map(|n| n.id).collect();
    let line = s
        .log()
        .lines()
        .rev()
        .find(|l| l.contains("port on p2 (re-attached): busy polling NAPI"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains(&format!("{now:?}")) && now != old,
        "re-attached p2 registered other ids than {now:?} (was {old:?}): {line}"
    );
    let back = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        pings(&p1, VM2, 1) == 1
    });
    assert!(back, "vm1 → vm2 after p2 came back\n{}", s.log());
    let rx2 = busy_poll_rx(&sw);
    let ok = pings(&p1, VM2, 10);
    assert!(ok >= 9, "vm1 → vm2 after re-attach: {ok}/10\n{}", s.log());
    assert!(busy_poll_rx(&sw) > rx2, "no busy polling after re-attach");

    // Stopped: p1's NAPI (kept by GRO) has its settings back.
    s.stop();
    let after = napis(&sw, "p1");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].defer_hard_irqs, before[0].defer_hard_irqs);
    assert_eq!(after[0].gro_flush_timeout, before[0].gro_flush_timeout);
}

#[test]
fn napi_busy_poll_off_leaves_napis_alone() {
    if !root_or_skip("napi_busy_poll_off_leaves_napis_alone") {
        return;
    }
    let (sw, vm1, _vm2) = setup();
    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let core = *cores().last().unwrap();
    let s = Vswitch::start(&sw, &dir.0, "sw", &config(&socket, false), core);
    let rx0 = busy_poll_rx(&sw);
    let p1 = Pinger::open(&vm1, 0x1202).unwrap();
    netrun::warm_up(&p1, VM2);
    let ok = pings(&p1, VM2, 5);
    assert!(ok >= 4, "vm1 → vm2: {ok}/5\n{}", s.log());
    for p in ["p1", "p2"] {
        for n in napis(&sw, p) {
            assert_eq!(n.defer_hard_irqs, Some(0), "{p}: {n:?}");
        }
    }
    assert_eq!(
        busy_poll_rx(&sw),
        rx0,
        "busy polled with napi_busy_poll = false"
    );
    let log = s.log();
    assert!(!log.contains("busy polling NAPI"), "{log}");
    assert!(!log.contains("napi_defer_hard_irqs"), "{log}");
    s.stop();
}

/// Two workers on two-queue veths: each registers the NAPI of its own queue of each port.
#[test]
fn two_workers_each_poll_their_own_queue() {
    if !root_or_skip("two_workers_each_poll_their_own_queue") {
        return;
    }
    let all = cores();
    if all.len() < 2 {
        eprintln!("SKIPPED: two_workers_each_poll_their_own_queue needs 2 cores");
        return;
    }
    let sw = NetNs::new(PREFIX).unwrap();
    let vm1 = NetNs::new(PREFIX).unwrap();
    let vm2 = NetNs::new(PREFIX).unwrap();
    for (port, h, mac, ip) in [
        ("p1", &vm1, "02:0d:00:00:01:01", VM1),
        ("p2", &vm2, "02:0d:00:00:01:02", VM2),
    ] {
        h.ip(&[
            "link",
            "add",
            "eth0",
            "numtxqueues",
            "2",
            "numrxqueues",
            "2",
            "type",
            "veth",
            "peer",
            "name",
            port,
            "numtxqueues",
            "2",
            "numrxqueues",
            "2",
            "netns",
            sw.name(),
        ])
        .unwrap();
        sw.ip(&["link", "set", "dev", port, "up"]).unwrap();
        h.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
        h.ip(&["link", "set", "dev", "eth0", "address", mac, "up"])
            .unwrap();
        vswitch_tests::netns::fastpath_napi(h, "eth0").unwrap();
        h.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])
            .unwrap();
        h.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
    }
    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let cfg = config(&socket, true).replace("workers = 1", "workers = 2");
    let s = Vswitch::start_on(&sw, &dir.0, "sw", &cfg, &all[all.len() - 2..]);
    let log = s.log();
    if unsupported("two_workers_each_poll_their_own_queue", &log) {
        return;
    }
    for p in ["p1", "p2"] {
        let mut napi_ids: Vec<u32> = napis(&sw, p).iter().map(|n| n.id).collect();
        napi_ids.sort_unstable();
        assert_eq!(napi_ids.len(), 2, "{p}: one NAPI per queue");
        // Queue w's NAPI is the w-th created (veth links no queue to its NAPI).
        for (w, id) in napi_ids.iter().enumerate() {
            let line = format!("worker {w}: port {p}: busy polling NAPI [{id}] of {p} queue {w}");
            assert!(log.contains(&line), "no `{line}` in:\n{log}");
        }
    }
    let p1 = Pinger::open(&vm1, 0x1203).unwrap();
    netrun::warm_up(&p1, VM2);
    let ok = pings(&p1, VM2, 10);
    assert!(ok >= 9, "vm1 → vm2: {ok}/10\n{}", s.log());
    tcp_transfer(&vm2, SocketAddrV4::new(VM2, 5203), &vm1, 4 << 20);
    s.stop();
}
