//! The running switch over in-memory channel ports: a worker thread forwards, learns,
//! answers snapshots, takes FDB changes and new configurations while it runs, and stops.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;
use dataplane::config::{Config, FdbTarget, NetIdx, PortIdx};
use dataplane::runtime::chan::ChannelBackend;
use dataplane::runtime::{StartOptions, Switch};
use encap::MacAddr;

const CFG: &str = r#"
[[network]]
name = "net-a"
segment = "local"

[[network]]
name = "net-b"
segment = "local"

[[port]]
name = "a1"
mode = "access"
network = "net-a"

[[port]]
name = "a2"
mode = "access"
network = "net-a"

[[port]]
name = "b1"
mode = "access"
network = "net-b"
"#;

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

fn recv(rx: &Receiver<Vec<u8>>) -> Vec<u8> {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("a frame within 5 s")
}

fn nothing(rx: &Receiver<Vec<u8>>) {
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

/// Waits until `f` holds (the workers apply control changes at their next poll).
fn eventually(mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "condition not met in 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_running_switch_forwards_and_is_controlled() {
    let cfg = Config::from_str(CFG, "t.toml").unwrap();
    let (backend, ends) = ChannelBackend::new(cfg.ports.len());
    let mut sw = Switch::start(cfg.clone(), Arc::new(backend), &StartOptions::default()).unwrap();
    let (h1, h2) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);

    // Flood inside net-a only, then known unicast back.
    ends[0].rx.send(frame([0xff; 6], h1)).unwrap();
    assert_eq!(recv(&ends[1].tx), frame([0xff; 6], h1));
    nothing(&ends[2].tx);
    ends[1].rx.send(frame(h1, h2)).unwrap();
    assert_eq!(recv(&ends[0].tx), frame(h1, h2));

    // Snapshots: counters and the FDB of worker 0.
    let snaps = sw.snapshots(Duration::from_secs(2));
    assert_eq!(snaps.len(), 1);
    let s = &snaps[0];
    assert_eq!(s.counters.flooded, 1);
    assert_eq!(s.counters.unicast, 1);
    assert_eq!(s.fdb.len(), 2);
    assert!(s.stats.loops > 0 && s.stats.packets == 2);

    // A flush reaches the worker: h1 unknown again, so h2 -> h1 floods.
    sw.flush(Some(NetIdx(0)), None).unwrap();
    eventually(|| sw.snapshots(Duration::from_secs(1))[0].fdb.is_empty());

    // A static entry pins h1 to a2.
    sw.add_static(NetIdx(0), MacAddr(h1), FdbTarget::Port(PortIdx(1)))
        .unwrap();
    eventually(|| {
        sw.snapshots(Duration::from_secs(1))[0]
            .fdb
            .iter()
            .any(|e| e.is_static)
    });
    ends[0].rx.send(frame(h1, h2)).unwrap();
    assert_eq!(recv(&ends[1].tx), frame(h1, h2));

    // A new configuration moves b1 into net-a: its frames now reach a1 and a2.
    let moved = Config::from_str(
        &CFG.replace("network = \"net-b\"\n", "network = \"net-a\"\n"),
        "t2.toml",
    )
    .unwrap();
    sw.reconfigure(moved).unwrap();
    eventually(|| {
        ends[2]
            .rx
            .send(frame([0xff; 6], [2, 0, 0, 0, 0, 3]))
            .unwrap();
        ends[0].tx.recv_timeout(Duration::from_millis(50)).is_ok()
    });
    // Removing a port applies while running: its channel is closed by the worker.
    let fewer = Config::from_str(
        &CFG.replace(
            "[[port]]\nname = \"b1\"\nmode = \"access\"\nnetwork = \"net-b\"\n",
            "",
        ),
        "t3.toml",
    )
    .unwrap();
    sw.reconfigure(fewer).unwrap();
    assert_eq!(sw.config().ports.len(), 2);
    assert!(matches!(
        ends[2].tx.recv_timeout(Duration::from_secs(1)),
        Err(crossbeam::channel::RecvTimeoutError::Disconnected)
    ));
    // The number of workers needs a restart.
    let mut two = sw.config().clone();
    two.switch.workers = 2;
    assert!(sw.reconfigure(two).is_err());

    let stop = sw.stop_flag();
    sw.shutdown();
    assert!(stop.load(std::sync::atomic::Ordering::Relaxed));
}

/// The control plane's requests against a running switch ([`ControlTarget`] for
/// [`Switch`]): rows and counters from the workers' snapshots, flushes through the FDB
/// lanes, changes with the same ports applied, port changes refused until a restart.
#[test]
fn a_running_switch_answers_control_requests() {
    use dataplane::control::proto::{LinkState, Reply, Request, Response};
    use dataplane::control::{handle, ControlTarget};

    let cfg = Config::from_str(CFG, "t.toml").unwrap();
    let (backend, ends) = ChannelBackend::new(cfg.ports.len());
    let mut sw = Switch::start(cfg, Arc::new(backend), &StartOptions::default()).unwrap();
    let (h1, h2) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    ends[0].rx.send(frame([0xff; 6], h1)).unwrap();
    recv(&ends[1].tx);
    ends[1].rx.send(frame(h1, h2)).unwrap();
    recv(&ends[0].tx);

    let ok = |r: Response| match r {
        Response::Ok { reply } => reply,
        Response::Error { error } => panic!("{error:?}"),
    };
    let Reply::Fdb(fdb) = ok(handle(&mut sw, Request::FdbShow { network: None })) else {
        panic!("not an fdb reply")
    };
    assert_eq!(fdb.entries.len(), 2);
    assert!(fdb
        .entries
        .iter()
        .any(|e| e.mac == "02:00:00:00:00:01" && e.port.as_deref() == Some("a1")));

    let Reply::Stats(stats) = ok(handle(&mut sw, Request::Stats {})) else {
        panic!("not a stats reply")
    };
    assert_eq!(stats.workers.len(), 1);
    let w = &stats.workers[0];
    assert_eq!(w.packets, 2);
    assert!(
        w.batches >= 1 && w.busy_ns > 0 && w.ns_per_packet.is_some(),
        "{w:?}"
    );
    // Cycles are the measured ns at the nominal clock (`cpu MHz`): as many, give or take
    // the clock, and a cycles-per-packet figure to go with them.
    assert!(w.busy_cycles > 0 && w.cycles_per_packet.is_some(), "{w:?}");
    assert_eq!(stats.fdb.entries, 2);

    let Reply::Show(show) = ok(handle(&mut sw, Request::Show {})) else {
        panic!("not a show reply")
    };
    assert_eq!(show.datapath, "channel");
    assert!(show.ports.iter().all(|p| p.link == LinkState::Up));

    // A static entry: a change with the same ports, applied through reconfigure.
    ok(handle(
        &mut sw,
        Request::FdbAdd {
            network: "net-b".into(),
            mac: "02:00:00:00:00:09".into(),
            port: Some("b1".into()),
            remote: None,
        },
    ));
    assert_eq!(sw.config().static_fdb.len(), 1);
    eventually(|| {
        sw.fdb_entries()
            .iter()
            .any(|e| e.is_static && e.mac == MacAddr([2, 0, 0, 0, 0, 9]))
    });
    // net-a's learned entries survived the change.
    assert_eq!(sw.fdb_entries().iter().filter(|e| !e.is_static).count(), 2);

    // Flush net-a.
    ok(handle(
        &mut sw,
        Request::FdbFlush {
            network: Some("net-a".into()),
            port: None,
        },
    ));
    eventually(|| sw.fdb_entries().iter().all(|e| e.is_static));

    // Removing a port applies while running: net-a's entries (learned again) stay, the
    // static entry on b1 goes with it.
    ends[0].rx.send(frame([0xff; 6], h1)).unwrap();
    recv(&ends[1].tx);
    eventually(|| sw.fdb_entries().iter().any(|e| !e.is_static));
    ok(handle(&mut sw, Request::PortDel { name: "b1".into() }));
    assert_eq!(sw.config().ports.len(), 2);
    eventually(|| {
        let rows = sw.fdb_entries();
        rows.iter().all(|e| !e.is_static) && rows.iter().any(|e| e.mac == MacAddr(h1))
    });
    sw.shutdown();
}

/// Forward-only mode: the same workers and ports, but every burst goes from port 2i to
/// port 2i+1 and back untouched (not even parsed: a runt passes), the odd last port's
/// frames are dropped as `no_peer`, nothing is learned; `ctl show` says the mode,
/// `ctl stats` has the per-port and per-worker counters, switching changes are refused.
#[test]
fn forward_only_moves_bursts_between_port_pairs() {
    use dataplane::control::proto::{Reply, Request, Response};
    use dataplane::control::{handle, ControlTarget};

    let text = format!("[switch]\nforward_only = true\n{CFG}");
    let cfg = Config::from_str(&text, "t.toml").unwrap();
    assert!(cfg.switch.forward_only);
    let (backend, ends) = ChannelBackend::new(cfg.ports.len());
    let mut sw = Switch::start(cfg, Arc::new(backend), &StartOptions::default()).unwrap();
    assert!(sw.forward_only());
    let (h1, h2) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);

    // a1 -> a2 and back, byte for byte; a broadcast is not flooded to b1.
    let bcast = frame([0xff; 6], h1);
    ends[0].rx.send(bcast.clone()).unwrap();
    assert_eq!(recv(&ends[1].tx), bcast);
    nothing(&ends[2].tx);
    // Not a valid Ethernet frame: moved all the same (nothing parses it).
    let runt = vec![0xab; 9];
    ends[1].rx.send(runt.clone()).unwrap();
    assert_eq!(recv(&ends[0].tx), runt);
    // A burst keeps its order.
    let burst: Vec<Vec<u8>> = (0..40u8).map(|i| frame(h2, [2, 0, 0, 0, 1, i])).collect();
    for f in &burst {
        ends[0].rx.send(f.clone()).unwrap();
    }
    for f in &burst {
        assert_eq!(&recv(&ends[1].tx), f);
    }
    // b1 is the odd one out: its frames are dropped and counted.
    ends[2].rx.send(frame(h1, h2)).unwrap();
    ends[2].rx.send(frame(h1, h2)).unwrap();
    nothing(&ends[0].tx);
    nothing(&ends[1].tx);

    let ok = |r: Response| match r {
        Response::Ok { reply } => reply,
        Response::Error { error } => panic!("{error:?}"),
    };
    let Reply::Show(show) = ok(handle(&mut sw, Request::Show {})) else {
        panic!("not a show reply")
    };
    assert_eq!(show.mode, "forward-only");
    let text = dataplane::control::format::reply(&Reply::Show(show));
    assert!(
        text.starts_with("vswitch (channel, forward-only):"),
        "{text}"
    );
    eventually(|| {
        let Reply::Stats(s) = ok(handle(&mut sw, Request::Stats {})) else {
            panic!("not a stats reply")
        };
        s.drops.get("no_peer").copied() == Some(2)
    });
    let Reply::Stats(stats) = ok(handle(&mut sw, Request::Stats {})) else {
        panic!("not a stats reply")
    };
    let port = |n: &str| stats.ports.iter().find(|p| p.name == n).unwrap().clone();
    assert_eq!((port("a1").rx_frames, port("a1").tx_frames), (41, 1));
    assert_eq!((port("a2").rx_frames, port("a2").tx_frames), (1, 41));
    assert_eq!(port("a2").tx_bytes, 41 * 60);
    assert_eq!((port("b1").rx_frames, port("b1").tx_frames), (2, 0));
    assert_eq!(stats.totals.drops, 2);
    assert_eq!(
        (
            stats.totals.learned,
            stats.totals.flooded,
            stats.totals.unicast
        ),
        (0, 0, 0)
    );
    let w = &stats.workers[0];
    assert_eq!(w.packets, 44);
    assert!(w.batches >= 3 && w.batches <= 44, "{w:?}");
    assert!(w.busy_ns > 0 && w.ns_per_packet.is_some(), "{w:?}");
    assert_eq!(stats.fdb.entries, 0);
    assert!(sw.fdb_entries().is_empty());

    // There is no switching state to change.
    for req in [
        Request::FdbFlush {
            network: None,
            port: None,
        },
        Request::NetworkAdd(dataplane::control::proto::NetworkSpec {
            name: "net-c".into(),
            segment: "local".into(),
            ..Default::default()
        }),
    ] {
        match handle(&mut sw, req) {
            Response::Error { error } => {
                assert!(error.message.contains("forward-only"), "{error:?}")
            }
            Response::Ok { reply } => panic!("applied in forward-only mode: {reply:?}"),
        }
    }
    assert!(sw.flush(None, None).is_err());
    sw.shutdown();
}

/// `ctl port add/del` on a running switch: a `[[port]]` added before the physnet port
/// in the configuration does not renumber it (its learned MACs still lead to it), the
/// new port forwards and learns, errors change nothing, a removed port's learned
/// entries go and its channel closes while every other entry stays.
#[test]
fn ports_added_and_removed_while_running() {
    use dataplane::control::proto::{PortSpec, Reply, Request, Response};
    use dataplane::control::{handle, ControlTarget};

    const PHYS: &str = r#"
[[physnet]]
name = "phys"
port = "ph"

[[network]]
name = "net-a"
segment = "local"

[[network]]
name = "net-f"
segment = "flat"
physnet = "phys"

[[port]]
name = "a1"
mode = "access"
network = "net-a"

[[port]]
name = "a2"
mode = "access"
network = "net-a"

[[port]]
name = "f1"
mode = "access"
network = "net-f"
"#;
    let cfg = Config::from_str(PHYS, "t.toml").unwrap();
    let names: Vec<&str> = cfg.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a1", "a2", "f1", "ph"]);
    let (backend, ends) = ChannelBackend::new(cfg.ports.len());
    let backend = Arc::new(backend);
    let mut sw = Switch::start(cfg, Arc::clone(&backend), &StartOptions::default()).unwrap();
    let (a1, a2, f1, ph) = (&ends[0], &ends[1], &ends[2], &ends[3]);
    let (h1, h2, hf, hp, h3) = (
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        [2, 0, 0, 0, 0, 0xf],
        [2, 0, 0, 0, 0, 0xe],
        [2, 0, 0, 0, 0, 3],
    );
    // Learn h1 (a1), h2 (a2), hf (f1), hp (ph).
    a1.rx.send(frame([0xff; 6], h1)).unwrap();
    recv(&a2.tx);
    a2.rx.send(frame(h1, h2)).unwrap();
    recv(&a1.tx);
    ph.rx.send(frame([0xff; 6], hp)).unwrap();
    recv(&f1.tx);
    f1.rx.send(frame(hp, hf)).unwrap();
    recv(&ph.tx);
    let learned = |sw: &Switch| {
        let mut rows: Vec<(MacAddr, u16)> =
            sw.fdb_entries().iter().map(|e| (e.mac, e.port.0)).collect();
        rows.sort();
        rows
    };
    eventually(|| learned(&sw).len() == 4);
    let before = learned(&sw);

    let ok = |r: Response| match r {
        Response::Ok { reply } => reply,
        Response::Error { error } => panic!("{error:?}"),
    };
    let refused = |r: Response| match r {
        Response::Error { error } => error,
        Response::Ok { reply } => panic!("accepted: {reply:?}"),
    };
    let spec = |name: &str, ifname: &str, network: &str| PortSpec {
        name: name.into(),
        ifname: Some(ifname.into()),
        mode: "access".into(),
        network: Some(network.into()),
        ..PortSpec::default()
    };

    // Errors leave everything as it was: no such netdev, a duplicate name, a network
    // that does not exist.
    let e = refused(handle(&mut sw, Request::PortAdd(spec("a3", "a3", "net-a"))));
    assert!(
        e.message.contains("no network device named \"a3\""),
        "{e:?}"
    );
    let e = refused(handle(&mut sw, Request::PortAdd(spec("a1", "x", "net-a"))));
    assert!(e.message.contains("a1"), "{e:?}");
    let e = refused(handle(&mut sw, Request::PortAdd(spec("a9", "a9", "net-x"))));
    assert!(e.message.contains("net-x"), "{e:?}");
    assert_eq!(sw.config().ports.len(), 4);
    assert_eq!(learned(&sw), before);

    // a3 is added: a [[port]], so before ph in the configuration, but ph keeps its
    // number and its learned MAC.
    let a3 = backend.netdev("a3");
    let Reply::Done { message } = ok(handle(&mut sw, Request::PortAdd(spec("a3", "a3", "net-a"))))
    else {
        panic!("not done")
    };
    assert_eq!(message, "added port a3");
    let names: Vec<&str> = sw.config().ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a1", "a2", "f1", "a3", "ph"]);
    assert_eq!(
        sw.layout().ports,
        [PortIdx(0), PortIdx(1), PortIdx(2), PortIdx(4), PortIdx(3)]
            .iter()
            .map(|p| flowtable::PortId(p.0))
            .collect::<Vec<_>>()
    );
    assert_eq!(learned(&sw), before, "learned entries changed by the add");
    // hf -> hp: still unicast to ph (not to a3, which has ph's old position).
    f1.rx.send(frame(hp, hf)).unwrap();
    assert_eq!(recv(&ph.tx), frame(hp, hf));
    nothing(&a3.tx);
    // The new port floods, learns and is reached.
    a1.rx.send(frame([0xff; 6], h1)).unwrap();
    assert_eq!(recv(&a2.tx), frame([0xff; 6], h1));
    assert_eq!(recv(&a3.tx), frame([0xff; 6], h1));
    a3.rx.send(frame(h1, h3)).unwrap();
    assert_eq!(recv(&a1.tx), frame(h1, h3));
    a2.rx.send(frame(h3, h2)).unwrap();
    assert_eq!(recv(&a3.tx), frame(h3, h2));
    nothing(&a1.tx);
    let Reply::Fdb(fdb) = ok(handle(&mut sw, Request::FdbShow { network: None })) else {
        panic!("not an fdb reply")
    };
    let port_of = |mac: &str| {
        fdb.entries
            .iter()
            .find(|e| e.mac == mac)
            .and_then(|e| e.port.clone())
    };
    assert_eq!(port_of("02:00:00:00:00:03").as_deref(), Some("a3"));
    assert_eq!(port_of("02:00:00:00:00:0e").as_deref(), Some("ph"));
    assert_eq!(port_of("02:00:00:00:00:01").as_deref(), Some("a1"));
    let Reply::Stats(stats) = ok(handle(&mut sw, Request::Stats {})) else {
        panic!("not a stats reply")
    };
    let names: Vec<&str> = stats.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a1", "a2", "f1", "a3", "ph"]);
    let st = |n: &str| stats.ports.iter().find(|p| p.name == n).unwrap().clone();
    assert_eq!((st("a3").rx_frames, st("a3").tx_frames), (1, 2));
    assert_eq!((st("ph").rx_frames, st("ph").tx_frames), (1, 2));
    // A second add of the same name is refused.
    let e = refused(handle(&mut sw, Request::PortAdd(spec("a3", "a3", "net-a"))));
    assert_eq!(e.kind, dataplane::control::ErrorKind::Invalid, "{e:?}");

    // a2 is removed: its entry goes, every other stays; its channel closes.
    ok(handle(&mut sw, Request::PortDel { name: "a2".into() }));
    assert!(matches!(
        a2.tx.recv_timeout(Duration::from_secs(1)),
        Err(crossbeam::channel::RecvTimeoutError::Disconnected)
    ));
    eventually(|| !learned(&sw).iter().any(|(m, _)| *m == MacAddr(h2)));
    let rows = learned(&sw);
    for mac in [h1, h3, hf, hp] {
        assert!(rows.iter().any(|(m, _)| *m == MacAddr(mac)), "{rows:?}");
    }
    // h2 is unknown now: a frame for it floods to a3 only.
    a1.rx.send(frame(h2, h1)).unwrap();
    assert_eq!(recv(&a3.tx), frame(h2, h1));
    // The physnet port cannot be removed (it is the physnet's).
    let e = refused(handle(&mut sw, Request::PortDel { name: "ph".into() }));
    assert!(e.message.contains("physnet"), "{e:?}");
    // a2 back on a new netdev: a new number (its old one is in quarantine).
    let a2b = backend.netdev("a2b");
    ok(handle(
        &mut sw,
        Request::PortAdd(spec("a2", "a2b", "net-a")),
    ));
    let a2_idx = sw.config().port_by_name("a2").unwrap();
    assert_eq!(sw.layout().port(a2_idx), Some(flowtable::PortId(5)));
    a1.rx.send(frame([0xff; 6], h1)).unwrap();
    assert_eq!(recv(&a2b.tx), frame([0xff; 6], h1));
    sw.shutdown();
}

/// A VXLAN packet from remote VTEP `src` (next hop MAC `src_mac`) to the local VTEP
/// 198.18.0.1 (`dst_mac`) with VNI `vni` around `inner`.
fn from_vtep(src: [u8; 4], src_mac: [u8; 6], dst_mac: [u8; 6], vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&54321u16.to_be_bytes());
    l4.extend_from_slice(&4789u16.to_be_bytes());
    l4.extend_from_slice(&((16 + inner.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0, 0x08, 0, 0, 0]);
    l4.extend_from_slice(&(vni << 8).to_be_bytes());
    l4.extend_from_slice(inner);
    let mut ip = etherparse::Ipv4Header::new(
        l4.len() as u16,
        64,
        etherparse::IpNumber::UDP,
        src,
        [198, 18, 0, 1],
    )
    .unwrap();
    ip.dont_fragment = true;
    ip.header_checksum = ip.calc_header_checksum();
    let mut v = Vec::new();
    v.extend_from_slice(&dst_mac);
    v.extend_from_slice(&src_mac);
    v.extend_from_slice(&[0x08, 0x00]);
    ip.write(&mut v).unwrap();
    v.extend_from_slice(&l4);
    v
}

/// Tunnel ports keep their numbers on a running switch: a MAC learned behind VTEP
/// 198.18.0.3 still leads there after a `[[port]]` is added (in the dense numbering,
/// tunnel ports follow the configuration ports and would all move) and after a network
/// whose VTEP came first in the VTEP list is removed (which moves 198.18.0.3 to VTEP
/// index 0).
#[test]
fn tunnel_ports_keep_their_numbers_when_ports_and_vteps_change() {
    use dataplane::control::handle;
    use dataplane::control::proto::{PortSpec, Reply, Request, Response};

    const LOCAL_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x01];
    const NH2: [u8; 6] = [2, 0, 0, 0, 0, 0x02];
    const NH3: [u8; 6] = [2, 0, 0, 0, 0, 0x03];
    const OVERLAY: &str = r#"
[underlay]
port = "uplink"
local_ip = "198.18.0.1/24"
local_mac = "02:00:00:00:00:01"
neighbors = [ { ip = "198.18.0.2", mac = "02:00:00:00:00:02" }, { ip = "198.18.0.3", mac = "02:00:00:00:00:03" } ]

[[network]]
name = "net-x"
segment = "vxlan"
id = 5030
remote_vteps = ["198.18.0.2"]

[[network]]
name = "net-v"
segment = "vxlan"
id = 5010
remote_vteps = ["198.18.0.3"]

[[port]]
name = "vm1"
mode = "access"
network = "net-v"
"#;
    let cfg = Config::from_str(OVERLAY, "t.toml").unwrap();
    assert_eq!(cfg.ports.len(), 2, "vm1 and the underlay's port");
    let (backend, ends) = ChannelBackend::new(cfg.ports.len());
    let backend = Arc::new(backend);
    let mut sw = Switch::start(cfg, Arc::clone(&backend), &StartOptions::default()).unwrap();
    let (vm1, uplink) = (&ends[0], &ends[1]);
    let (x, h1) = (
        [0xfa, 0x16, 0x3e, 0, 0, 0x20],
        [0xfa, 0x16, 0x3e, 0, 0, 0x01],
    );

    // x speaks from behind 198.18.0.3 (VNI 5010): decapsulated to vm1, learned.
    let hello = frame([0xff; 6], x);
    uplink
        .rx
        .send(from_vtep([198, 18, 0, 3], NH3, LOCAL_MAC, 5010, &hello))
        .unwrap();
    assert_eq!(recv(&vm1.tx), hello);
    let ok = |r: Response| match r {
        Response::Ok { reply } => reply,
        Response::Error { error } => panic!("{error:?}"),
    };
    let vtep_of_x = |sw: &mut Switch| {
        let Reply::Fdb(f) = ok(handle(sw, Request::FdbShow { network: None })) else {
            panic!("not an fdb reply")
        };
        f.entries
            .iter()
            .find(|e| e.mac == "fa:16:3e:00:00:20")
            .map(|e| (e.port.clone(), e.vtep))
    };
    eventually(|| vtep_of_x(&mut sw).is_some());
    let behind = Some((None, Some("198.18.0.3".parse().unwrap())));
    assert_eq!(vtep_of_x(&mut sw), behind);

    // A [[port]] added, then the network whose VTEP came first removed.
    let vm2 = backend.netdev("vm2");
    ok(handle(
        &mut sw,
        Request::PortAdd(PortSpec {
            name: "vm2".into(),
            ifname: Some("vm2".into()),
            mode: "access".into(),
            network: Some("net-v".into()),
            ..PortSpec::default()
        }),
    ));
    assert_eq!(vtep_of_x(&mut sw), behind);
    ok(handle(
        &mut sw,
        Request::NetworkDel {
            name: "net-x".into(),
        },
    ));
    assert_eq!(sw.config().vteps.len(), 1);
    assert_eq!(vtep_of_x(&mut sw), behind);

    // vm1 -> x: known unicast, encapsulated toward 198.18.0.3 only.
    let to_x = frame(x, h1);
    vm1.rx.send(to_x.clone()).unwrap();
    let out = recv(&uplink.tx);
    assert_eq!(&out[..6], &NH3, "outer destination MAC");
    assert_eq!(&out[30..34], &[198, 18, 0, 3], "outer destination IP");
    assert_eq!(&out[out.len() - to_x.len()..], &to_x[..]);
    nothing(&vm2.tx);
    nothing(&uplink.tx);
    let _ = NH2;
    sw.shutdown();
}
