//! Bad input on real ports: every frame of the fuzz seed corpora (`fuzz/corpus/parse`:
//! tag stacks, VID 4095, truncated and odd IP; `fuzz/corpus/decap`: malformed and
//! nested VXLAN/GRE), sent over AF_XDP into an access port, a trunk and the underlay
//! port of `vswitch run`, has exactly the fate the same pipeline gives it in memory
//! ([`OfflineSwitch`], fed the same frames in the same order): the same frames out of
//! the same ports, the same drops under the same reasons. Nothing crashes, every frame
//! is accounted for, and nothing reaches a network it does not belong to.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns sw: vswitch run; network a (vxlan 5010 → 198.18.31.2, static neighbour),
//!         network b (local)
//!    p1 access a, p2 access a, p3 access b, t1 trunk {10 = a, 20 = b}, ul underlay
//!  each port's peer sits in its own namespace, with no address (it never answers)
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dataplane::config::{Config, PortIdx};
use dataplane::control::proto::StatsReply;
use dataplane::offline::OfflineSwitch;
use netrun::{cores, TempDir, Vswitch};
use vswitch_tests::netns::{root_or_skip, veth_pair, wait_until, NetNs};
use vswitch_tests::rawsock::RawSocket;

const PREFIX: &str = "vsw-bad";
const PORTS: [&str; 5] = ["p1", "p2", "p3", "t1", "ul"];

fn config(socket: &Path) -> String {
    format!(
        r#"
[switch]
workers = 1
control_socket = "{}"

[underlay]
port = "ul"
ifname = "ul"
local_ip = "198.18.31.1/24"
local_mac = "02:00:00:00:31:01"
neighbors = [ {{ ip = "198.18.31.2", mac = "02:00:00:00:31:02" }} ]

[[network]]
name = "a"
segment = "vxlan"
id = 5010
remote_vteps = ["198.18.31.2"]

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

[[port]]
name = "t1"
ifname = "t1"
mode = "trunk"
vlans = {{ 10 = "a", 20 = "b" }}
"#,
        socket.display()
    )
}

/// The seeds of one corpus, by name; `skip` leading bytes (a harness's control byte).
fn seeds(target: &str, skip: usize) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            let name = format!("{target}/{}", p.file_name().unwrap().to_string_lossy());
            (name, bytes.get(skip..).unwrap_or_default().to_vec())
        })
        // An Ethernet header at least: a packet socket sends nothing shorter.
        .filter(|(_, b)| b.len() >= 14 && b.len() <= 1514)
        .collect();
    v.sort();
    v
}

/// Per port name: (rx, tx); and the drops by reason.
type View = (BTreeMap<String, (u64, u64)>, BTreeMap<String, u64>);

fn view(st: &StatsReply) -> View {
    let ports = st
        .ports
        .iter()
        .filter(|p| PORTS.contains(&p.name.as_str()))
        .map(|p| (p.name.clone(), (p.rx_frames + p.rx_dropped, p.tx_frames)))
        .collect();
    (ports, st.drops.clone())
}

fn delta(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    b.iter()
        .map(|(k, v)| (k.clone(), v - a.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

#[test]
fn corpus_frames_on_real_ports_match_the_pipeline() {
    if !root_or_skip("corpus_frames_on_real_ports_match_the_pipeline") {
        return;
    }
    let dir = TempDir::new(PREFIX);
    let node = NetNs::new(PREFIX).unwrap();
    let peers: Vec<NetNs> = PORTS.iter().map(|_| NetNs::new(PREFIX).unwrap()).collect();
    for (peer, port) in peers.iter().zip(PORTS) {
        peer.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
        peer.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
            .unwrap();
        veth_pair(peer, "eth0", &node, port).unwrap();
        vswitch_tests::netns::fastpath_napi(peer, "eth0").unwrap();
    }
    let socket = Vswitch::socket_path(&dir.0, "bad");
    let text = config(&socket);
    let sw = Vswitch::start(&node, &dir.0, "bad", &text, *cores().last().unwrap());
    let mut model = OfflineSwitch::new(Config::from_str(&text, "bad.toml").unwrap()).unwrap();
    let cfg = model.config().clone();
    let idx = |name: &str| PortIdx(cfg.port_by_name(name).unwrap().0);

    let mut frames = seeds("parse", 0);
    frames.extend(seeds("decap", 1));
    assert!(frames.len() > 30, "corpus not found: {}", frames.len());
    let mut checked = 0;
    let mut t = 1_000_000_000u64;
    for ingress in ["p1", "t1", "ul"] {
        let tx = RawSocket::open(
            &peers[PORTS.iter().position(|p| *p == ingress).unwrap()],
            "eth0",
        )
        .unwrap();
        for (name, frame) in &frames {
            let before = view(&sw.stats());
            let model_before = model.counters();
            t += 1_000_000;
            let out = model.inject(idx(ingress), frame, t);
            tx.send(frame).unwrap();
            // Wait until the frame was received and every copy the model sent left.
            let mut want_tx: BTreeMap<String, u64> = BTreeMap::new();
            for (p, _) in &out.sent {
                *want_tx
                    .entry(cfg.ports[p.index()].name.clone())
                    .or_default() += 1;
            }
            let mut now = before.clone();
            let settled = wait_until(Duration::from_secs(3), Duration::from_millis(5), || {
                now = view(&sw.stats());
                let rx = now.0[ingress].0 - before.0[ingress].0;
                let tx_ok = PORTS
                    .iter()
                    .all(|p| now.0[*p].1 - before.0[*p].1 >= want_tx.get(*p).copied().unwrap_or(0));
                rx >= 1 && tx_ok
            });
            // A little longer: anything the model did not send would show now.
            std::thread::sleep(Duration::from_millis(20));
            now = view(&sw.stats());
            let what = format!("{name} into {ingress}");
            assert!(
                settled,
                "{what}: not received or not sent as the model did\n{}",
                sw.log()
            );
            let got_tx: BTreeMap<String, u64> = PORTS
                .iter()
                .map(|p| (p.to_string(), now.0[*p].1 - before.0[*p].1))
                .filter(|(_, v)| *v > 0)
                .collect();
            assert_eq!(got_tx, want_tx, "{what}: frames out per port");
            let model_drops: BTreeMap<String, u64> = dataplane::counters::DropReason::ALL
                .iter()
                .map(|r| {
                    (
                        r.name().to_owned(),
                        model.counters().dropped(*r) - model_before.dropped(*r),
                    )
                })
                .filter(|(_, v)| *v > 0)
                .collect();
            assert_eq!(delta(&before.1, &now.1), model_drops, "{what}: drops");
            assert_eq!(
                now.0[ingress].0 - before.0[ingress].0,
                1,
                "{what}: received"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} corpus frames: fate on real ports = fate in the pipeline");
    // Still serving, nothing lost from the configuration.
    let show = sw.ctl_text(&["show"]);
    for p in PORTS {
        assert!(show.contains(p), "{p} missing from show:\n{show}");
    }
}
