//! `vswitch ctl port add/del` on a running `vswitch run` with AF_XDP veth ports: a port
//! added while the switch forwards gets its XDP program and sockets, carries traffic at
//! once, and the MACs learned on the other ports survive the change; a refused add
//! (no such netdev, a duplicate name) changes nothing; a removed port's XDP program is
//! gone when `ctl` returns, its learned MACs with it, and the others keep forwarding
//! (the added port removed, added again, then one of the first ports removed).
//! One worker and two workers (each binds its own queue of the new port on its own
//! UMEM; a netdev with one queue is refused). SIGTERM then leaves no XDP program on any port.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns vm1 eth0 198.18.13.1/24 ══ veth ══ p1 ┐
//!  ns vm2 eth0 198.18.13.2/24 ══ veth ══ p2 ┼ vswitch run (ns sw), network n (access)
//!  ns vm3 eth0 198.18.13.3/24 ══ veth ══ p3 ┘   ← added with `ctl port add`
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::net::Ipv4Addr;
use std::time::Duration;

use dataplane::control::proto::{LinkState, Reply, XdpMode};
use netrun::{cores, pings, TempDir, Vswitch};
use vswitch_tests::netns::{root_or_skip, veth_pair, wait_until, NetNs};
use vswitch_tests::ping::Pinger;

const PREFIX: &str = "vsw-port";
const VM1: Ipv4Addr = Ipv4Addr::new(198, 18, 13, 1);
const VM2: Ipv4Addr = Ipv4Addr::new(198, 18, 13, 2);
const VM3: Ipv4Addr = Ipv4Addr::new(198, 18, 13, 3);
const MAC1: &str = "02:0e:00:00:00:01";
const MAC2: &str = "02:0e:00:00:00:02";
const MAC3: &str = "02:0e:00:00:00:03";

fn config(socket: &std::path::Path, workers: usize) -> String {
    let mut c = format!(
        "[switch]\nworkers = {workers}\ncontrol_socket = \"{}\"\n\n[[network]]\nname = \"n\"\nsegment = \"local\"\n",
        socket.display()
    );
    for p in ["p1", "p2"] {
        c.push_str(&format!(
            "\n[[port]]\nname = \"{p}\"\nifname = \"{p}\"\nmode = \"access\"\nnetwork = \"n\"\n"
        ));
    }
    c
}

/// A VM behind `port`, its veth with `queues` queues each way.
fn host(sw: &NetNs, port: &str, h: &NetNs, mac: &str, addr: Ipv4Addr, queues: usize) {
    let q = queues.to_string();
    h.ip(&[
        "link",
        "add",
        "eth0",
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
        "type",
        "veth",
        "peer",
        "name",
        port,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
        "netns",
        sw.name(),
    ])
    .unwrap();
    sw.ip(&["link", "set", port, "up"]).unwrap();
    h.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    h.ip(&["link", "set", "eth0", "address", mac, "up"])
        .unwrap();
    vswitch_tests::netns::fastpath_napi(h, "eth0").unwrap();
    h.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])
        .unwrap();
    h.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
}

/// (MAC, port) of every learned entry.
fn fdb(s: &Vswitch) -> Vec<(String, Option<String>)> {
    let Reply::Fdb(f) = s.ctl_json(&["fdb", "show"]) else {
        panic!("fdb show: not an fdb reply")
    };
    f.entries.into_iter().map(|e| (e.mac, e.port)).collect()
}

fn has_xdp(sw: &NetNs, dev: &str) -> bool {
    sw.ip(&["-d", "link", "show", "dev", dev])
        .unwrap()
        .contains("xdp")
}

#[test]
fn port_added_and_removed_while_running() {
    if !root_or_skip("port_added_and_removed_while_running") {
        return;
    }
    scenario(1);
}

#[test]
fn port_added_and_removed_with_two_workers() {
    if !root_or_skip("port_added_and_removed_with_two_workers") {
        return;
    }
    if cores().len() < 2 {
        eprintln!("SKIPPED: port_added_and_removed_with_two_workers needs 2 cores");
        return;
    }
    scenario(2);
}

fn scenario(workers: usize) {
    let sw = NetNs::new(PREFIX).unwrap();
    let vm1 = NetNs::new(PREFIX).unwrap();
    let vm2 = NetNs::new(PREFIX).unwrap();
    let vm3 = NetNs::new(PREFIX).unwrap();
    host(&sw, "p1", &vm1, MAC1, VM1, workers);
    host(&sw, "p2", &vm2, MAC2, VM2, workers);
    host(&sw, "p3", &vm3, MAC3, VM3, workers);
    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let all = cores();
    let s = Vswitch::start_on(
        &sw,
        &dir.0,
        "sw",
        &config(&socket, workers),
        &all[all.len() - workers..],
    );
    assert!(!has_xdp(&sw, "p3"), "p3 taken before it was added");

    let p1 = Pinger::open(&vm1, 0x1301).unwrap();
    // Once the veths settle (no carrier for a moment after an XDP program is attached).
    let settled = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        pings(&p1, VM2, 1) == 1
    });
    assert!(
        settled,
        "vm1 → vm2: no answer in 10 s
{}",
        s.log()
    );
    let ok = pings(&p1, VM2, 5);
    assert!(ok >= 4, "vm1 → vm2: {ok}/5\n{}", s.log());
    let before = fdb(&s);
    assert!(
        before.contains(&(MAC1.into(), Some("p1".into()))),
        "{before:?}"
    );
    assert!(
        before.contains(&(MAC2.into(), Some("p2".into()))),
        "{before:?}"
    );

    // Refused adds change nothing.
    let bad = s.ctl(&["port", "add", "p9", "--ifname", "nope0", "--network", "n"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("no network device named \"nope0\""), "{err}");
    let dup = s.ctl(&["port", "add", "p1", "--ifname", "p3", "--network", "n"]);
    assert!(!dup.status.success());
    assert!(!has_xdp(&sw, "p3"), "a refused add left a program on p3");
    // With two workers, a netdev with one queue cannot be added (each worker binds its
    // own queue).
    let vm4 = NetNs::new(PREFIX).unwrap();
    if workers > 1 {
        veth_pair(&vm4, "eth0", &sw, "p4").unwrap();
        vswitch_tests::netns::fastpath_napi(&vm4, "eth0").unwrap();
        let one = s.ctl(&["port", "add", "p4", "--ifname", "p4", "--network", "n"]);
        assert!(!one.status.success());
        let err = String::from_utf8_lossy(&one.stderr);
        assert!(
            err.contains("1 receive queue(s), fewer than the 2 workers"),
            "{err}"
        );
        assert!(!has_xdp(&sw, "p4"), "a refused add left a program on p4");
    }
    let Reply::Show(show) = s.ctl_json(&["show"]) else {
        panic!("show: not a show reply")
    };
    assert_eq!(show.ports.len(), 2);

    // p3 added while running: its program is attached, the learned MACs of p1 and p2
    // are still there, and vm3 is reachable at once.
    let out = s.ctl_text(&["port", "add", "p3", "--ifname", "p3", "--network", "n"]);
    assert_eq!(out.trim(), "added port p3");
    assert!(has_xdp(&sw, "p3"), "no XDP program on p3 after the add");
    let after = fdb(&s);
    for e in &before {
        assert!(after.contains(e), "{e:?} lost by the add: {after:?}");
    }
    let Reply::Show(show) = s.ctl_json(&["show"]) else {
        panic!("show: not a show reply")
    };
    let p3 = show.ports.iter().find(|p| p.name == "p3").unwrap();
    assert_eq!(
        (p3.link, p3.xdp_mode),
        (LinkState::Up, Some(XdpMode::Native))
    );
    let settled = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        pings(&p1, VM3, 1) == 1
    });
    assert!(
        settled,
        "vm1 → vm3: no answer in 5 s after the add\n{}",
        s.log()
    );
    let ok = pings(&p1, VM3, 5);
    assert!(ok >= 4, "vm1 → vm3 after the add: {ok}/5\n{}", s.log());
    let pv3 = Pinger::open(&vm3, 0x1303).unwrap();
    let ok = pings(&pv3, VM2, 5);
    assert!(ok >= 4, "vm3 → vm2 after the add: {ok}/5\n{}", s.log());
    assert!(fdb(&s).contains(&(MAC3.into(), Some("p3".into()))));
    if workers > 1 {
        netrun::every_queue_forwards(
            &s,
            (&vm1, VM1),
            (&vm3, VM3),
            7300,
            "UDP from vm3 through the added port",
        );
    }

    // p3 removed again: its program is gone when ctl returns, its MAC with it; p1's and
    // p2's stay and they go on forwarding.
    let out = s.ctl_text(&["port", "del", "p3"]);
    assert_eq!(out.trim(), "removed port p3");
    assert!(!has_xdp(&sw, "p3"), "XDP program left on p3 after the del");
    let gone = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        !fdb(&s).iter().any(|(m, _)| m == MAC3)
    });
    assert!(gone, "p3's MAC still learned: {:?}", fdb(&s));
    let rows = fdb(&s);
    assert!(rows.contains(&(MAC1.into(), Some("p1".into()))), "{rows:?}");
    assert!(rows.contains(&(MAC2.into(), Some("p2".into()))), "{rows:?}");
    let ok = pings(&p1, VM2, 5);
    assert!(ok >= 4, "vm1 → vm2 after removing p3: {ok}/5\n{}", s.log());
    assert_eq!(pings(&p1, VM3, 2), 0, "vm3 reached through a removed port");
    // And back: the same netdev is taken again.
    s.ctl_text(&["port", "add", "p3", "--ifname", "p3", "--network", "n"]);
    assert!(
        has_xdp(&sw, "p3"),
        "no XDP program on p3 after the second add"
    );
    let back = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        pings(&p1, VM3, 1) == 1
    });
    assert!(back, "vm1 → vm3 after adding p3 again\n{}", s.log());

    // p2 removed: its program is gone when ctl returns, its MAC with it; p1 <-> p3 go on.
    let out = s.ctl_text(&["port", "del", "p2"]);
    assert_eq!(out.trim(), "removed port p2");
    assert!(!has_xdp(&sw, "p2"), "XDP program left on p2 after the del");
    let gone = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        !fdb(&s).iter().any(|(m, _)| m == MAC2)
    });
    assert!(gone, "p2's MAC still learned: {:?}", fdb(&s));
    let rows = fdb(&s);
    assert!(rows.contains(&(MAC1.into(), Some("p1".into()))), "{rows:?}");
    assert!(rows.contains(&(MAC3.into(), Some("p3".into()))), "{rows:?}");
    let ok = pings(&p1, VM3, 10);
    assert!(ok >= 9, "vm1 → vm3 after removing p2: {ok}/10\n{}", s.log());
    assert_eq!(pings(&p1, VM2, 2), 0, "vm2 reached through a removed port");
    let stats = s.stats();
    let names: Vec<&str> = stats.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["p1", "p3"]);
    eprintln!("{}\n{}", s.ctl_text(&["show"]), s.ctl_text(&["stats"]));
    let log = s.log();
    assert_eq!(
        log.matches("port p3 on p3: AF_XDP, XDP native mode (added while running)")
            .count(),
        2,
        "{log}"
    );
    assert!(log.contains("port p2 on p2: closed"), "{log}");

    s.stop();
    for p in ["p1", "p2", "p3"] {
        assert!(!has_xdp(&sw, p), "XDP program left on {p}");
    }
}
