//! The XDP fast path against the workers alone: the same randomized traffic — known
//! and unknown destinations, broadcasts, access and trunk ports (802.1Q push, pop and
//! translate), MAC moves, a flush and an aging period mid-stream, malformed frames —
//! through `vswitch run --fastpath` and `vswitch run --no-fastpath`; every port's peer
//! must receive exactly the same frames, and with the fast path on a share of them
//! must have been forwarded in the kernel.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns sw: vswitch run; networks a, b (local), MAC aging 15 s (the least allowed)
//!    p1 access a, p2 access a, p3 access b, t1 trunk {10 = a, 20 = b}
//!  each port's peer in its own namespace (GRO on both ends: a veth needs a NAPI to
//!  receive redirected frames), sending and receiving raw frames
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use netrun::{cores, TempDir, Vswitch};
use vswitch_tests::netns::{root_or_skip, veth_pair, NetNs};
use vswitch_tests::rawsock::RawSocket;

const PREFIX: &str = "vsw-fp";
const PORTS: [&str; 4] = ["p1", "p2", "p3", "t1"];
/// Frames sent per run.
const FRAMES: usize = 1500;

fn config(socket: &Path) -> String {
    format!(
        r#"
[switch]
workers = 1
mac_aging_secs = 15
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

[[port]]
name = "t1"
ifname = "t1"
mode = "trunk"
vlans = {{ 10 = "a", 20 = "b" }}
"#,
        socket.display()
    )
}

/// xorshift64*: the same traffic in both runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One frame to send: from which port's peer, and its bytes.
struct Step {
    port: usize,
    frame: Vec<u8>,
    /// Pause after it (an aging period, or a flush through the control socket).
    after: Option<Event>,
}

#[derive(Clone, Copy)]
enum Event {
    Age,
    Flush,
}

/// Which ports carry network `net` (0 = a, 1 = b), and the VID on the trunk.
fn carriers(net: usize) -> (Vec<usize>, u16) {
    match net {
        0 => (vec![0, 1, 3], 10),
        _ => (vec![2, 3], 20),
    }
}

/// A UDP frame (full checksums) of `len` bytes, with `seq` in its payload.
fn frame(src: [u8; 6], dst: [u8; 6], vid: Option<u16>, seq: u32, len: usize) -> Vec<u8> {
    let payload = {
        let mut p = seq.to_be_bytes().to_vec();
        p.resize(len.saturating_sub(46).max(4), (seq & 0xff) as u8);
        p
    };
    let b = etherparse::PacketBuilder::ethernet2(src, dst);
    let mut out = Vec::new();
    match vid {
        Some(v) => b
            .single_vlan(etherparse::VlanId::try_new(v).unwrap())
            .ipv4([198, 18, 40, 1], [198, 18, 40, 2], 64)
            .udp(4000, 5000)
            .write(&mut out, &payload)
            .unwrap(),
        None => b
            .ipv4([198, 18, 40, 1], [198, 18, 40, 2], 64)
            .udp(4000, 5000)
            .write(&mut out, &payload)
            .unwrap(),
    }
    out
}

/// The traffic: a few hosts per network, each behind one port (and sometimes moving),
/// sending to each other, to unknown MACs and to broadcast; now and then a malformed
/// frame, an aging period or a flush.
fn traffic(seed: u64) -> Vec<Step> {
    let mut rng = Rng(seed);
    // Hosts: (network, MAC, port).
    let mut hosts: Vec<(usize, [u8; 6], usize)> = Vec::new();
    for net in 0..2 {
        let (ports, _) = carriers(net);
        for h in 0..4u8 {
            let port = ports[h as usize % ports.len()];
            hosts.push((net, [0x02, 0xfa, net as u8, 0, 0, h + 1], port));
        }
    }
    let mut steps = Vec::with_capacity(FRAMES);
    for seq in 0..FRAMES as u32 {
        let i = rng.below(hosts.len() as u64) as usize;
        // A move, now and then: the host shows up behind another port of its network.
        if rng.below(60) == 0 {
            let (ports, _) = carriers(hosts[i].0);
            hosts[i].2 = ports[rng.below(ports.len() as u64) as usize];
        }
        let (net, src, port) = hosts[i];
        let (_, vid) = carriers(net);
        let dst = match rng.below(20) {
            0 => [0xff; 6],
            1 => [0x02, 0xee, 0, 0, 0, rng.below(3) as u8],
            _ => {
                let peers: Vec<_> = hosts.iter().filter(|h| h.0 == net).collect();
                peers[rng.below(peers.len() as u64) as usize].1
            }
        };
        let tag = (port == 3).then_some(vid);
        let mut f = frame(src, dst, tag, seq, 60 + rng.below(200) as usize);
        if rng.below(100) == 0 {
            // Malformed: an IPv4 header that claims more than the frame has.
            let l3 = if tag.is_some() { 18 } else { 14 };
            f[l3 + 2] = 0xff;
        }
        let after = match seq as usize {
            s if s == FRAMES / 3 => Some(Event::Age),
            s if s == 2 * FRAMES / 3 => Some(Event::Flush),
            _ => None,
        };
        steps.push(Step {
            port,
            frame: f,
            after,
        });
    }
    steps
}

/// Per port: the frames its peer received (bytes, with a stripped tag put back), in
/// the order received.
type Delivered = BTreeMap<&'static str, Vec<Vec<u8>>>;

/// Runs the traffic through `vswitch run` with `args`; returns what every peer
/// received and the switch's final counters.
fn run(args: &[&str]) -> (Delivered, dataplane::control::proto::StatsReply) {
    let sw = NetNs::new(PREFIX).unwrap();
    let peers: Vec<NetNs> = PORTS.iter().map(|_| NetNs::new(PREFIX).unwrap()).collect();
    for (p, ns) in PORTS.iter().zip(&peers) {
        veth_pair(&sw, p, ns, "eth0").unwrap();
        // A veth receives XDP-redirected frames only with a NAPI: GRO gives it one.
        sw.ethtool(&["-K", p, "gro", "on"]).unwrap();
        ns.ethtool(&["-K", "eth0", "gro", "on", "tx", "off"])
            .unwrap();
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    }
    let dir = TempDir::new(sw.name());
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let core = *cores().last().unwrap();
    let vs = Vswitch::start_with(&sw, &dir.0, "sw", &config(&socket), &[core], args);
    let socks: Vec<RawSocket> = peers
        .iter()
        .map(|ns| RawSocket::open(ns, "eth0").unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for s in &socks {
        s.drain().unwrap();
    }
    let mut got: Delivered = PORTS.iter().map(|p| (*p, Vec::new())).collect();
    let collect = |socks: &[RawSocket], got: &mut Delivered| {
        for (p, s) in PORTS.iter().zip(socks) {
            while let Some(f) = s.recv_frame(Duration::ZERO).unwrap() {
                // Only the test's traffic (the peers' own stacks send a few frames).
                if f.data.get(6..8) != Some(&[0x02, 0xfa][..]) {
                    continue;
                }
                let mut data = f.data;
                if let Some(tci) = f.vlan_tci {
                    let mut tag = vec![0x81, 0x00];
                    tag.extend_from_slice(&tci.to_be_bytes());
                    data.splice(12..12, tag);
                }
                got.get_mut(p).unwrap().push(data);
            }
        }
    };
    for step in traffic(0x5eed_f00d) {
        socks[step.port].send(&step.frame).unwrap();
        // Paced: the fast path installs an entry within a millisecond or two of the
        // workers' decision; both runs see the same pacing.
        std::thread::sleep(Duration::from_micros(400));
        collect(&socks, &mut got);
        match step.after {
            Some(Event::Age) => std::thread::sleep(Duration::from_millis(16_500)),
            Some(Event::Flush) => {
                let out = vs.ctl(&["fdb", "flush"]);
                assert!(out.status.success(), "flush: {out:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
            None => {}
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    collect(&socks, &mut got);
    let st = vs.stats();
    vs.stop();
    (got, st)
}

/// Sorted per port: the fast path and a worker may interleave one port's frames
/// differently when both carry them at the same moment.
fn sorted(d: &Delivered) -> BTreeMap<&'static str, Vec<Vec<u8>>> {
    d.iter()
        .map(|(p, v)| {
            let mut v = v.clone();
            v.sort();
            (*p, v)
        })
        .collect()
}

#[test]
fn fast_path_delivers_exactly_what_the_workers_deliver() {
    if !root_or_skip("fast_path_delivers_exactly_what_the_workers_deliver") {
        return;
    }
    let (slow, slow_st) = run(&["--no-fastpath"]);
    let (fast, fast_st) = run(&["--fastpath"]);
    let fp = fast_st.fastpath.clone().expect("fast path counters");
    eprintln!(
        "fast path: {:?}\nslow: {:?}\nfast: {:?}",
        fp, slow_st.totals, fast_st.totals
    );
    assert!(
        slow_st.fastpath.is_none(),
        "--no-fastpath still had a fast path"
    );
    for p in PORTS {
        eprintln!(
            "{p}: {} frames without the fast path, {} with it",
            slow[p].len(),
            fast[p].len()
        );
    }
    let (slow, fast) = (sorted(&slow), sorted(&fast));
    let mut failures = Vec::new();
    for p in PORTS {
        if slow[p] != fast[p] {
            let hex = |f: &Vec<u8>| -> String {
                f.iter()
                    .take(48)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    + &format!(" ({} bytes)", f.len())
            };
            for f in slow[p].iter().filter(|f| !fast[p].contains(f)).take(4) {
                eprintln!("{p} only without: {}", hex(f));
            }
            for f in fast[p].iter().filter(|f| !slow[p].contains(f)).take(4) {
                eprintln!("{p} only with:    {}", hex(f));
            }
            let only_slow = slow[p].iter().filter(|f| !fast[p].contains(f)).count();
            let only_fast = fast[p].iter().filter(|f| !slow[p].contains(f)).count();
            failures.push(format!(
                "{p}: the fast path changed what was delivered: {only_slow} frame(s) only \
                 without it, {only_fast} only with it (of {} / {})",
                slow[p].len(),
                fast[p].len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The fast path carried traffic, and its frames are in the port counters.
    let hits = fp.get("hits");
    assert!(
        hits > 100,
        "the fast path forwarded only {hits} frames: {fp:?}"
    );
    assert!(
        fp.get("punt_src_moved") > 0,
        "no move was seen by the fast path: {fp:?}"
    );
    let rx = |st: &dataplane::control::proto::StatsReply| -> u64 {
        st.ports.iter().map(|p| p.rx_frames).sum()
    };
    assert_eq!(rx(&slow_st), rx(&fast_st), "port counters differ");
}
