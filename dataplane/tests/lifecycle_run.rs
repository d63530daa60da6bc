//! `vswitch run` when a port's netdev disappears and comes back: three VMs on one
//! network behind p1, p2, p3. p2 set down is reported down and comes back up. Deleting p3's veth must not stop p1 ↔ p2; `ctl show`
//! reports p3 down (logged once, frames for it counted as `port_down`); re-creating the
//! veth with the same names brings p3 back (re-attached, `ctl show` up, pings again);
//! SIGTERM then leaves no XDP program on any port.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns vm1 eth0 198.18.11.1/24 ══ veth ══ p1 ┐
//!  ns vm2 eth0 198.18.11.2/24 ══ veth ══ p2 ┼ vswitch run (ns sw), network n (access)
//!  ns vm3 eth0 198.18.11.3/24 ══ veth ══ p3 ┘   ← deleted, then re-created
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::net::Ipv4Addr;
use std::time::Duration;

use dataplane::control::proto::{LinkState, Reply};
use netrun::{cores, pings, vm, TempDir, Vswitch};
use vswitch_tests::netns::{root_or_skip, wait_until, NetNs};
use vswitch_tests::ping::Pinger;

const PREFIX: &str = "vsw-life";
const VM1: Ipv4Addr = Ipv4Addr::new(198, 18, 11, 1);
const VM2: Ipv4Addr = Ipv4Addr::new(198, 18, 11, 2);
const VM3: Ipv4Addr = Ipv4Addr::new(198, 18, 11, 3);
const MAC3: &str = "02:0c:00:00:00:03";

fn config(socket: &std::path::Path, workers: usize) -> String {
    let mut c = format!(
        r#"
[switch]
workers = {workers}
control_socket = "{}"

[[network]]
name = "n"
segment = "local"
"#,
        socket.display()
    );
    for p in ["p1", "p2", "p3"] {
        c.push_str(&format!(
            "\n[[port]]\nname = \"{p}\"\nifname = \"{p}\"\nmode = \"access\"\nnetwork = \"n\"\n"
        ));
    }
    c
}

fn link(sw: &Vswitch, port: &str) -> LinkState {
    let Reply::Show(show) = sw.ctl_json(&["show"]) else {
        panic!("show: not a show reply")
    };
    show.ports.iter().find(|p| p.name == port).unwrap().link
}

fn drops(sw: &Vswitch, reason: &str) -> u64 {
    let stats = sw.stats();
    stats.drops.get(reason).copied().unwrap_or(0)
}

/// A VM behind `port` as [`vm`] makes it, its veth with `queues` queues each way.
fn host(sw: &NetNs, port: &str, h: &NetNs, mac: &str, addr: &str, queues: usize) {
    if queues == 1 {
        return vm(sw, port, h, mac, addr, 1500);
    }
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
    h.ip(&["addr", "add", addr, "dev", "eth0"]).unwrap();
    h.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
}

#[test]
fn netdev_deleted_and_recreated_while_running() {
    if !root_or_skip("netdev_deleted_and_recreated_while_running") {
        return;
    }
    scenario(1);
}

/// Two workers: each binds its own queue of every port; the first to see p3 back takes
/// the netdev again and the other binds its queue to the same program.
#[test]
fn netdev_deleted_and_recreated_with_two_workers() {
    if !root_or_skip("netdev_deleted_and_recreated_with_two_workers") {
        return;
    }
    let cores = cores();
    if cores.len() < 2 {
        eprintln!("SKIPPED: netdev_deleted_and_recreated_with_two_workers needs 2 cores");
        return;
    }
    scenario(2);
}

fn scenario(workers: usize) {
    let sw = NetNs::new(PREFIX).unwrap();
    let vm1 = NetNs::new(PREFIX).unwrap();
    let vm2 = NetNs::new(PREFIX).unwrap();
    let vm3 = NetNs::new(PREFIX).unwrap();
    let addr = |a: Ipv4Addr| format!("{a}/24");
    host(&sw, "p1", &vm1, "02:0c:00:00:00:01", &addr(VM1), workers);
    host(&sw, "p2", &vm2, "02:0c:00:00:00:02", &addr(VM2), workers);
    host(&sw, "p3", &vm3, MAC3, &addr(VM3), workers);
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

    let p1 = Pinger::open(&vm1, 0x1101).unwrap();
    let p2 = Pinger::open(&vm2, 0x1102).unwrap();
    // The two tests of this file run at once, their busy-polling workers sharing the two
    // cores: the first pings after start may be lost.
    netrun::warm_up(&p1, VM2);
    netrun::warm_up(&p1, VM3);
    let ok = pings(&p1, VM2, 5);
    assert!(ok >= 4, "vm1 → vm2: {ok}/5\n{}", s.log());
    let ok = pings(&p1, VM3, 5);
    assert!(ok >= 4, "vm1 → vm3: {ok}/5\n{}", s.log());
    assert_eq!(link(&s, "p3"), LinkState::Up);

    // p2 administratively down, then up again: marked down and back, no re-attach.
    sw.ip(&["link", "set", "p2", "down"]).unwrap();
    let down = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        link(&s, "p2") == LinkState::Down
    });
    assert!(down, "ctl show never showed p2 down\n{}", s.log());
    let ok = pings(&p1, VM3, 5);
    assert!(ok >= 4, "vm1 → vm3 with p2 down: {ok}/5\n{}", s.log());
    sw.ip(&["link", "set", "p2", "up"]).unwrap();
    let up = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        link(&s, "p2") == LinkState::Up
    });
    assert!(up, "ctl show never showed p2 up again\n{}", s.log());
    let back = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        pings(&p1, VM2, 1) == 1
    });
    assert!(back, "vm1 → vm2 after p2 came up\n{}", s.log());

    // p3's veth disappears (its peer, vm3's eth0, with it).
    sw.ip(&["link", "del", "p3"]).unwrap();
    let down = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        link(&s, "p3") == LinkState::Down
    });
    assert!(down, "ctl show never showed p3 down\n{}", s.log());
    assert_eq!(link(&s, "p1"), LinkState::Up);
    assert_eq!(link(&s, "p2"), LinkState::Up);
    // The rest keeps forwarding.
    let ok = pings(&p1, VM2, 10);
    assert!(ok >= 9, "vm1 → vm2 with p3 gone: {ok}/10\n{}", s.log());
    let ok = pings(&p2, VM1, 10);
    assert!(ok >= 9, "vm2 → vm1 with p3 gone: {ok}/10\n{}", s.log());
    // Frames for vm3 (learned on p3, in vm1's neighbour cache) are counted as dropped.
    let before = drops(&s, "port_down");
    let lost = pings(&p1, VM3, 3);
    assert_eq!(lost, 0);
    let after = drops(&s, "port_down");
    assert!(after > before, "port_down drops {before} → {after}");
    let log = s.log();
    assert_eq!(
        log.matches("port on p3: link down").count(),
        1,
        "p3 going down not logged exactly once:\n{log}"
    );

    // The same names again: p3 is re-attached and forwards.
    host(&sw, "p3", &vm3, MAC3, &addr(VM3), workers);
    let up = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        link(&s, "p3") == LinkState::Up
    });
    assert!(up, "ctl show never showed p3 up again\n{}", s.log());
    let back = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        pings(&p1, VM3, 1) == 1
    });
    assert!(back, "vm1 → vm3 after re-creating p3\n{}", s.log());
    let p3 = Pinger::open(&vm3, 0x1103).unwrap();
    let ok = pings(&p3, VM2, 10);
    assert!(
        ok >= 9,
        "vm3 → vm2 after re-creating p3: {ok}/10\n{}",
        s.log()
    );
    let ok = pings(&p1, VM2, 5);
    assert!(
        ok >= 4,
        "vm1 → vm2 after re-creating p3: {ok}/5\n{}",
        s.log()
    );
    let log = s.log();
    assert!(
        log.contains("port on p3: netdev back, re-attached"),
        "no re-attach logged:\n{log}"
    );
    if workers > 1 {
        netrun::every_queue_forwards(
            &s,
            (&vm1, VM1),
            (&vm3, VM3),
            7100,
            "UDP from vm3 after re-creating p3",
        );
    }
    let show = s.ctl_text(&["show"]);
    eprintln!("{show}\n{log}");

    // SIGTERM: no XDP program left on any port, the re-attached one included.
    s.stop();
    for p in ["p1", "p2", "p3"] {
        let l = sw.ip(&["-d", "link", "show", "dev", p]).unwrap();
        assert!(!l.contains("xdp"), "XDP program left on {p}: {l}");
    }
}
