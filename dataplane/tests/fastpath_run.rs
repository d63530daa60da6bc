//! The XDP fast path against the workers alone: the same randomized traffic — known
//! and unknown destinations, broadcasts, access and trunk ports (802.1Q push, pop and
//! translate), a VXLAN and a GRE network with a remote VTEP (encapsulation and
//! decapsulation) over an IPv4 underlay and, in a second test, an IPv6 one, MAC moves,
//! a flush and an aging period mid-stream, malformed frames, frames over a tunnel's MTU,
//! unknown VNIs and GRE keys, and tunnel packets the fast path leaves to the workers — through `vswitch run --fastpath` and
//! `vswitch run --no-fastpath`; every port's peer must receive exactly the same frames,
//! and with the fast path on a share of them must have been forwarded in the kernel.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns sw: vswitch run; networks a, b (local), v (vxlan 5010), g (gre, key 0x01234567),
//!         both to the remote VTEP 198.18.41.2 (or 2001:2:0:41::2; static neighbour),
//!         MAC aging 15 s (the least allowed)
//!    p1 access a, p2 access a, p3 access b, t1 trunk {10 = a, 20 = b, 30 = v, 40 = g},
//!    p4 access v, p5 access g, ul underlay (its peer plays the remote VTEP)
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
const PORTS: [&str; 7] = ["p1", "p2", "p3", "t1", "p4", "p5", "ul"];
/// The underlay port's index in `PORTS`.
const UL: usize = 6;
const LOCAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x41, 0x01];
const REMOTE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x41, 0x02];
const VNI: u32 = 5010;
/// All 32 bits of it count.
const GRE_KEY: u32 = 0x0123_4567;

/// The underlay's addresses: IPv4 or IPv6 (RFC 5180's benchmarking prefix).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn local(self) -> &'static str {
        match self {
            Family::V4 => "198.18.41.1",
            Family::V6 => "2001:2:0:41::1",
        }
    }

    fn remote(self) -> &'static str {
        match self {
            Family::V4 => "198.18.41.2",
            Family::V6 => "2001:2:0:41::2",
        }
    }

    fn prefix(self) -> u8 {
        match self {
            Family::V4 => 24,
            Family::V6 => 64,
        }
    }
}
/// Frames sent per run.
const FRAMES: usize = 1500;

fn config(socket: &Path, fam: Family) -> String {
    format!(
        r#"
[switch]
workers = 1
mac_aging_secs = 15
control_socket = "{}"

[underlay]
port = "ul"
ifname = "ul"
local_ip = "{local}/{prefix}"
local_mac = "02:00:00:00:41:01"
neighbors = [ {{ ip = "{remote}", mac = "02:00:00:00:41:02" }} ]

[[network]]
name = "v"
segment = "vxlan"
id = {VNI}
remote_vteps = ["{remote}"]

[[network]]
name = "g"
segment = "gre"
id = {GRE_KEY}
remote_vteps = ["{remote}"]

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
vlans = {{ 10 = "a", 20 = "b", 30 = "v", 40 = "g" }}

[[port]]
name = "p4"
ifname = "p4"
mode = "access"
network = "v"

[[port]]
name = "p5"
ifname = "p5"
mode = "access"
network = "g"
"#,
        socket.display(),
        local = fam.local(),
        remote = fam.remote(),
        prefix = fam.prefix(),
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

/// Which ports carry network `net` (0 = a, 1 = b, 2 = v and 3 = g: behind the remote
/// VTEP too), and the VID on the trunk.
fn carriers(net: usize) -> (Vec<usize>, u16) {
    match net {
        0 => (vec![0, 1, 3], 10),
        1 => (vec![2, 3], 20),
        2 => (vec![3, 4, UL], 30),
        _ => (vec![3, 5, UL], 40),
    }
}

/// The remote VTEP's outer headers around `payload` (protocol `proto`).
fn outer(fam: Family, proto: etherparse::IpNumber, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(REMOTE_MAC, LOCAL_MAC);
    let mut out = Vec::new();
    let b = match fam {
        Family::V4 => b.ipv4([198, 18, 41, 2], [198, 18, 41, 1], 64),
        Family::V6 => {
            let ip = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
            b.ipv6(ip(fam.remote()), ip(fam.local()), 64)
        }
    };
    b.write(&mut out, proto, payload).unwrap();
    out
}

/// `inner` as the remote VTEP sends it over GRE with the key (and, if `seq`, a
/// sequence number, which the fast path leaves to the workers).
fn gre(fam: Family, inner: &[u8], key: u32, seq: bool) -> Vec<u8> {
    let mut payload = vec![if seq { 0x30 } else { 0x20 }, 0, 0x65, 0x58];
    payload.extend_from_slice(&key.to_be_bytes());
    if seq {
        payload.extend_from_slice(&7u32.to_be_bytes());
    }
    payload.extend_from_slice(inner);
    outer(fam, etherparse::IpNumber::GRE, &payload)
}

/// `inner` as the remote VTEP sends it: VXLAN, over IPv4 without a UDP checksum, over
/// IPv6 with one.
fn vxlan(fam: Family, inner: &[u8], vni: u32, sport: u16) -> Vec<u8> {
    let mut payload = vec![
        0x08,
        0,
        0,
        0,
        (vni >> 16) as u8,
        (vni >> 8) as u8,
        vni as u8,
        0,
    ];
    payload.extend_from_slice(inner);
    let mut out = Vec::new();
    let b = etherparse::PacketBuilder::ethernet2(REMOTE_MAC, LOCAL_MAC);
    match fam {
        Family::V4 => {
            b.ipv4([198, 18, 41, 2], [198, 18, 41, 1], 64)
                .udp(sport, 4789)
                .write(&mut out, &payload)
                .unwrap();
            out[14 + 20 + 6..14 + 20 + 8].fill(0);
        }
        Family::V6 => {
            let ip = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
            b.ipv6(ip(fam.remote()), ip(fam.local()), 64)
                .udp(sport, 4789)
                .write(&mut out, &payload)
                .unwrap();
        }
    }
    out
}

/// Where the inner frame starts in a frame the switch encapsulated (or the remote
/// VTEP sent): after Ethernet, IPv4 or IPv6, and UDP + VXLAN or GRE with a key.
fn inner_at(x: &[u8]) -> usize {
    match (x.get(12..14), x.get(23), x.get(20)) {
        (Some([0x08, 0x00]), Some(17), _) => 50,
        (Some([0x08, 0x00]), Some(47), _) => 42,
        (Some([0x86, 0xdd]), _, Some(17)) => 70,
        (Some([0x86, 0xdd]), _, Some(47)) => 62,
        _ => 0,
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
fn traffic(seed: u64, fam: Family) -> Vec<Step> {
    let mut rng = Rng(seed);
    // Hosts: (network, MAC, port).
    let mut hosts: Vec<(usize, [u8; 6], usize)> = Vec::new();
    for net in 0..4 {
        let (ports, _) = carriers(net);
        for h in 0..4u8 {
            // Two of a tunnel network's hosts behind the remote VTEP.
            let port = if net >= 2 && h == 3 {
                UL
            } else {
                ports[h as usize % ports.len()]
            };
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
        // Now and then a full-size frame: over a tunnel it no longer fits the underlay's
        // MTU once encapsulated (a counted drop by the workers, a punt by the program).
        let len = if port != UL && rng.below(15) == 0 {
            1460 + rng.below(55) as usize
        } else {
            60 + rng.below(200) as usize
        };
        let mut f = frame(src, dst, tag, seq, len);
        if rng.below(100) == 0 {
            // Malformed: an IPv4 header that claims more than the frame has.
            let l3 = if tag.is_some() { 18 } else { 14 };
            f[l3 + 2] = 0xff;
        }
        // Now and then a VNI or key no network has: a counted drop by the workers.
        let unknown = rng.below(50) == 0;
        if port == UL && net == 2 {
            let vni = if unknown { VNI + 1 } else { VNI };
            f = vxlan(fam, &f, vni, 49152 + rng.below(1000) as u16);
            let udp = if fam == Family::V4 { 34 } else { 54 };
            match rng.below(50) {
                // A VXLAN header with a reserved bit set: the workers judge it.
                0 => f[udp + 8 + 1] = 0x01,
                // Over IPv6, a zero UDP checksum (the workers drop it) or a wrong one.
                1 if fam == Family::V6 => f[udp + 6..udp + 8].fill(0),
                2 if fam == Family::V6 => f[udp + 7] ^= 0x40,
                _ => {}
            }
        } else if port == UL {
            let key = if unknown {
                GRE_KEY ^ 0x8000_0000
            } else {
                GRE_KEY
            };
            f = gre(fam, &f, key, rng.below(50) == 0);
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

/// The sequence number a test frame carries (in its UDP payload), encapsulated or not.
fn seq_of(x: &[u8]) -> Option<u32> {
    let inner = inner_at(x);
    let l3 = if x.get(inner + 12..inner + 14) == Some(&[0x81, 0x00][..]) {
        18
    } else {
        14
    };
    let at = inner + l3 + 28;
    Some(u32::from_be_bytes(x.get(at..at + 4)?.try_into().ok()?))
}

/// Per port: the frames its peer received (bytes, with a stripped tag put back), in
/// the order received.
type Delivered = BTreeMap<&'static str, Vec<Vec<u8>>>;

/// Runs the traffic through `vswitch run` with `args`; returns what every peer
/// received and the switch's final counters.
fn run(args: &[&str], fam: Family) -> (Delivered, dataplane::control::proto::StatsReply) {
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
    let vs = Vswitch::start_with(&sw, &dir.0, "sw", &config(&socket, fam), &[core], args);
    let socks: Vec<RawSocket> = peers
        .iter()
        .map(|ns| RawSocket::open(ns, "eth0").unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for s in &socks {
        s.drain().unwrap();
    }
    let mut got: Delivered = PORTS.iter().map(|p| (*p, Vec::new())).collect();
    // Returns whether a frame with sequence number `want` arrived.
    let collect = |socks: &[RawSocket], got: &mut Delivered, want: Option<u32>| -> bool {
        let mut seen = false;
        for (p, s) in PORTS.iter().zip(socks) {
            while let Some(f) = s.recv_frame(Duration::ZERO).unwrap() {
                // Only the test's traffic (the peers' own stacks send a few frames):
                // a host's frame, or one encapsulated by the switch.
                let inner = inner_at(&f.data);
                let ours = f.data.get(6..8) == Some(&[0x02, 0xfa][..])
                    || (f.data.get(6..12) == Some(&LOCAL_MAC[..])
                        && f.data.get(inner + 6..inner + 8) == Some(&[0x02, 0xfa][..]));
                if !ours {
                    continue;
                }
                let mut data = f.data;
                if let Some(tci) = f.vlan_tci {
                    let mut tag = vec![0x81, 0x00];
                    tag.extend_from_slice(&tci.to_be_bytes());
                    data.splice(12..12, tag);
                }
                seen |= want.is_some() && seq_of(&data) == want;
                got.get_mut(p).unwrap().push(data);
            }
        }
        seen
    };
    for (seq, step) in traffic(0x5eed_f00d, fam).into_iter().enumerate() {
        socks[step.port].send(&step.frame).unwrap();
        // One frame at a time: the next is sent once this one has been delivered
        // (or after 30 ms, if it is dropped), so that the switch sees the frames of
        // different ports in the order they were sent in both runs (a worker polls
        // its ports in turn). Then a moment for the fast path to install what the
        // workers offered.
        let deadline = std::time::Instant::now() + Duration::from_millis(30);
        while !collect(&socks, &mut got, Some(seq as u32)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(50));
        }
        std::thread::sleep(Duration::from_micros(200));
        collect(&socks, &mut got, None);
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
    collect(&socks, &mut got, None);
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
    differential(Family::V4);
}

#[test]
fn fast_path_delivers_exactly_what_the_workers_deliver_over_ipv6() {
    if !root_or_skip("fast_path_delivers_exactly_what_the_workers_deliver_over_ipv6") {
        return;
    }
    differential(Family::V6);
}

/// One differential run at a time: each relies on the switch seeing the frames in the
/// order they were sent, which a second rig loading the other core would disturb.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn differential(fam: Family) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (slow, slow_st) = run(&["--no-fastpath"], fam);
    // FASTPATH_RUN_SELFCHECK=1: both runs without the fast path (is the rig
    // deterministic?).
    let selfcheck = std::env::var_os("FASTPATH_RUN_SELFCHECK").is_some();
    let (fast, fast_st) = run(
        &[if selfcheck {
            "--no-fastpath"
        } else {
            "--fastpath"
        }],
        fam,
    );
    let fp = if selfcheck {
        dataplane::fastpath::FastPathStats::default()
    } else {
        fast_st.fastpath.clone().expect("fast path counters")
    };
    eprintln!(
        "fast path: {:?}\nslow: {:?}\nfast: {:?}\ndrops without the fast path: {:?}\n\
         with it: {:?}",
        fp, slow_st.totals, fast_st.totals, slow_st.drops, fast_st.drops
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
            let elsewhere = |d: &BTreeMap<&'static str, Vec<Vec<u8>>>, f: &Vec<u8>| -> String {
                // Where the other run delivered a frame with the same sequence number.
                let s = seq_of(f);
                d.iter()
                    .filter(|(_, v)| v.iter().any(|x| seq_of(x) == s))
                    .map(|(q, _)| *q)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            for f in slow[p].iter().filter(|f| !fast[p].contains(f)).take(4) {
                eprintln!(
                    "{p} only without: {} (with: on {})",
                    hex(f),
                    elsewhere(&fast, f)
                );
            }
            for f in fast[p].iter().filter(|f| !slow[p].contains(f)).take(4) {
                eprintln!(
                    "{p} only with:    {} (without: on {})",
                    hex(f),
                    elsewhere(&slow, f)
                );
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
        fp.get("encap") > 0 && fp.get("decap") > 0,
        "no tunnel frame took the fast path: {fp:?}"
    );
    // Both tunnels, both ways, over the underlay's family only.
    let (enc, dec) = (fp.get("encap"), fp.get("decap"));
    let (gre_enc, gre_dec) = (fp.get("encap_gre"), fp.get("decap_gre"));
    let v6 = match fam {
        Family::V4 => 0,
        Family::V6 => 1,
    };
    assert!(
        gre_enc > 0 && gre_enc < enc && gre_dec > 0 && gre_dec < dec,
        "VXLAN and GRE did not both take the fast path both ways: {fp:?}"
    );
    assert_eq!(
        (fp.get("encap_ipv6"), fp.get("decap_ipv6")),
        (enc * v6, dec * v6),
        "encapsulations by underlay family: {fp:?}"
    );
    assert!(
        fast_st.drops.get("unknown_segment").copied().unwrap_or(0) > 0,
        "no tunnel packet with an unknown VNI or key was sent: {:?}",
        fast_st.drops
    );
    assert!(
        fp.get("punt_mtu") > 0 && fast_st.drops.get("mtu_exceeded").copied().unwrap_or(0) > 0,
        "no frame over a tunnel's MTU met the fast path: {fp:?} {:?}",
        fast_st.drops
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
