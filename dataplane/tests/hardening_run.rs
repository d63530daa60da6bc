//! The attack tests over AF_XDP, with `vswitch run` on veth ports in network
//! namespaces: a secured VM port that spoofs (source MAC, source IP, ARP for another
//! VM's address) has every spoofed frame dropped and counted while its own traffic
//! flows; a VM that sprays a million random source MACs into unknown destinations
//! neither evicts nor blocks two other VMs that keep pinging each other (every ping
//! answered, none of their frames flooded to the sprayer), and storm control keeps the
//! flood it causes to its configured rate.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns vm1 eth0 198.18.20.1/24 ══ veth ══ p1 ┐ vswitch run (ns sw), network n (local):
//!  ns vm2 eth0 198.18.20.2/24 ══ veth ══ p2 ├ p1 secured (mac, ips); p3 storm control
//!  ns vm3 eth0 198.18.20.3/24 ══ veth ══ p3 ┘ and learning limits
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netrun::{cores, pings, vm, warm_up, TempDir, Vswitch};
use vswitch_tests::netns::{root_or_skip, NetNs};
use vswitch_tests::ping::Pinger;
use vswitch_tests::rawsock::RawSocket;

const PREFIX: &str = "vsw-hard";
const MAC1: &str = "02:00:00:00:20:01";
const MAC2: &str = "02:00:00:00:20:02";
const MAC3: &str = "02:00:00:00:20:03";
const M1: [u8; 6] = [2, 0, 0, 0, 0x20, 1];
const M2: [u8; 6] = [2, 0, 0, 0, 0x20, 2];
const STORM_PPS: u64 = 2000;

/// The tests share the machine's cores: one switch at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Rig {
    _dir: TempDir,
    sw: Vswitch,
    _node: NetNs,
    vms: Vec<NetNs>,
}

fn rig(name: &str) -> Rig {
    let dir = TempDir::new(&format!("{PREFIX}-{name}"));
    let node = NetNs::new(PREFIX).unwrap();
    let vms: Vec<NetNs> = (0..3).map(|_| NetNs::new(PREFIX).unwrap()).collect();
    for (i, (v, mac)) in vms.iter().zip([MAC1, MAC2, MAC3]).enumerate() {
        vm(
            &node,
            &format!("p{}", i + 1),
            v,
            mac,
            &format!("198.18.20.{}/24", i + 1),
            1500,
        );
    }
    let socket = Vswitch::socket_path(&dir.0, name);
    let config = format!(
        r#"
[switch]
workers = 1
control_socket = "{}"
mac_table_size = 4096
mac_limit_per_port = 2048
mac_learn_rate_per_port = 5000

[[network]]
name = "n"
segment = "local"

[[port]]
name = "p1"
ifname = "p1"
mode = "access"
network = "n"
mac = "{MAC1}"
ips = ["198.18.20.1"]

[[port]]
name = "p2"
ifname = "p2"
mode = "access"
network = "n"

[[port]]
name = "p3"
ifname = "p3"
mode = "access"
network = "n"
storm_control_pps = {STORM_PPS}
"#,
        socket.display()
    );
    let core = *cores().last().unwrap();
    let sw = Vswitch::start(&node, &dir.0, name, &config, core);
    Rig {
        _dir: dir,
        sw,
        _node: node,
        vms,
    }
}

fn drops(sw: &Vswitch) -> std::collections::BTreeMap<String, u64> {
    let st = sw.stats();
    st.drops
}

/// A UDP/IPv4 frame with `marker` in its payload.
fn udp(dst: [u8; 6], src: [u8; 6], sip: [u8; 4], dip: [u8; 4], marker: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(src, dst)
        .ipv4(sip, dip, 64)
        .udp(40000, 40001)
        .write(&mut out, marker)
        .unwrap();
    out
}

/// An ARP reply from `sha`/`spa` to vm2, sent as broadcast (gratuitous).
fn arp_reply(sha: [u8; 6], spa: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&spa);
    f.resize(60, 0);
    f
}

#[test]
fn port_security_over_af_xdp() {
    if !root_or_skip("port_security_over_af_xdp") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = rig("portsec");
    let (vm1, vm2, vm3) = (&r.vms[0], &r.vms[1], &r.vms[2]);
    let p1 = Pinger::open(vm1, 0x2001).unwrap();
    // The secured VM's own traffic (ARP, ICMP from its address) flows.
    warm_up(&p1, "198.18.20.2".parse().unwrap());
    let before = drops(&r.sw);
    let tx = RawSocket::open(vm1, "eth0").unwrap();
    let rx2 = RawSocket::open(vm2, "eth0").unwrap();
    let rx3 = RawSocket::open(vm3, "eth0").unwrap();
    rx2.drain().unwrap();
    rx3.drain().unwrap();
    const MARK: &[u8] = b"vswitch-spoof-test";
    let n = 50;
    for _ in 0..n {
        // Another VM's source MAC; another source address; ARP claiming vm3's address
        // (to poison vm2's cache) and vm2's.
        tx.send(&udp(
            M2,
            [2, 0, 0, 0, 0x20, 9],
            [198, 18, 20, 1],
            [198, 18, 20, 2],
            MARK,
        ))
        .unwrap();
        tx.send(&udp(M2, M1, [198, 18, 20, 77], [198, 18, 20, 2], MARK))
            .unwrap();
        tx.send(&arp_reply(M1, [198, 18, 20, 3])).unwrap();
        tx.send(&arp_reply(M1, [198, 18, 20, 2])).unwrap();
    }
    // What is allowed still passes: its own address, to vm2.
    for _ in 0..n {
        tx.send(&udp(
            M2,
            M1,
            [198, 18, 20, 1],
            [198, 18, 20, 2],
            b"vswitch-legit-test",
        ))
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut spoofed_seen, mut legit) = (0, 0);
    while Instant::now() < deadline {
        for rx in [&rx2, &rx3] {
            while let Some(f) = rx.recv(Duration::from_millis(20)).unwrap() {
                let is = |m: &[u8]| f.windows(m.len()).any(|w| w == m);
                if is(MARK) || (f.len() >= 42 && f[12..14] == [8, 6] && f[6..12] == M1) {
                    spoofed_seen += 1;
                }
                if is(b"vswitch-legit-test") {
                    legit += 1;
                }
            }
        }
        if legit == n {
            break;
        }
    }
    let after = drops(&r.sw);
    let grew = |k: &str| after[k] - before[k];
    eprintln!(
        "spoofed: mac {} ip {} arp {}; legit delivered {legit}/{n}; spoofed seen {spoofed_seen}",
        grew("spoofed_mac"),
        grew("spoofed_ip"),
        grew("spoofed_arp")
    );
    assert_eq!(spoofed_seen, 0, "a spoofed frame left the switch");
    assert_eq!(grew("spoofed_mac"), n);
    assert_eq!(grew("spoofed_ip"), n);
    assert_eq!(grew("spoofed_arp"), 2 * n);
    assert_eq!(legit, n, "{}", r.sw.log());
    // vm2's neighbour cache was not poisoned: vm3's address is not at vm1's MAC.
    let neigh = vm2.ip(&["neigh", "show", "198.18.20.3"]).unwrap();
    assert!(
        !neigh.contains(MAC1),
        "vm2 learned vm3's address at vm1's MAC: {neigh}"
    );
    // And the secured VM still reaches the others.
    assert_eq!(pings(&p1, "198.18.20.3".parse().unwrap(), 5), 5);
}

#[test]
fn mac_spray_neither_evicts_nor_blocks_others() {
    if !root_or_skip("mac_spray_neither_evicts_nor_blocks_others") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = rig("spray");
    let (vm1, vm2, vm3) = (&r.vms[0], &r.vms[1], &r.vms[2]);
    let p1 = Pinger::open(vm1, 0x2002).unwrap();
    let p2 = Pinger::open(vm2, 0x2003).unwrap();
    warm_up(&p1, "198.18.20.2".parse().unwrap());
    warm_up(&p2, "198.18.20.1".parse().unwrap());
    let before = drops(&r.sw);
    // The sprayer's own view: frames between vm1 and vm2 must never reach it.
    let rx3 = RawSocket::open(vm3, "eth0").unwrap();
    rx3.drain().unwrap();
    let vm1_rx0 = vm1.link_stats("eth0").unwrap().rx_packets;
    let done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    const TOTAL: u64 = 1_000_000;
    let sprayer = {
        let (done, sent) = (Arc::clone(&done), Arc::clone(&sent));
        let tx = RawSocket::open(vm3, "eth0").unwrap();
        std::thread::spawn(move || {
            // Random locally administered sources, to a destination nobody has: each
            // is a new MAC and an unknown-unicast flood.
            let mut f = udp(
                [2, 0, 0, 0, 0x66, 0x66],
                [2, 0, 0, 0, 0, 0],
                [198, 18, 20, 3],
                [198, 18, 20, 200],
                b"vswitch-spray",
            );
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for i in 0..TOTAL {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let b = x.to_be_bytes();
                f[6..12].copy_from_slice(&[0x02, 0x55, b[2], b[3], b[4], b[5]]);
                // A full socket buffer only means the veth is busy: try again.
                while tx.send(&f).is_err() {
                    std::thread::yield_now();
                }
                sent.store(i + 1, Ordering::Relaxed);
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    // While it sprays, vm1 and vm2 ping each other: every ping is answered.
    let (mut asked, mut answered) = (0u32, 0u32);
    let started = Instant::now();
    while !done.load(Ordering::Relaxed) {
        for (p, to) in [(&p1, "198.18.20.2"), (&p2, "198.18.20.1")] {
            asked += 1;
            if p.ping(
                to.parse().unwrap(),
                asked as u16,
                56,
                Duration::from_secs(1),
            )
            .unwrap()
            .is_some()
            {
                answered += 1;
            }
        }
    }
    let spray_secs = started.elapsed().as_secs_f64();
    sprayer.join().unwrap();
    let after = drops(&r.sw);
    // What reached the sprayer and vm1: no vm1↔vm2 unicast at the sprayer; the
    // flood the spray caused, at most storm control's rate (+ its burst) at vm1.
    let mut leaked = 0u64;
    while let Some(f) = rx3.recv(Duration::from_millis(50)).unwrap() {
        if f.len() >= 14 && (f[0..6] == M1 || f[0..6] == M2) {
            leaked += 1;
        }
    }
    // vm1 received the pings' requests and replies (and perhaps an ARP or two)
    // besides what the spray flooded to it.
    let vm1_rx = vm1.link_stats("eth0").unwrap().rx_packets - vm1_rx0;
    let flood_at_vm1 = vm1_rx.saturating_sub(u64::from(asked) + 8);
    let st = r.sw.stats();
    let storm = after["storm_control"] - before["storm_control"];
    eprintln!(
        "sprayed {} frames in {spray_secs:.1} s; pings answered {answered}/{asked}; \
         vm1/vm2 frames at the sprayer {leaked}; spray floods at vm1 {flood_at_vm1}, \
         storm-control drops {storm}; learned {}, refused: port limit {}, rate cap {}; fdb {}",
        sent.load(Ordering::Relaxed),
        st.totals.learned,
        st.totals.learn_port_limit,
        st.totals.learn_rate_limited,
        st.fdb.learned_entries,
    );
    assert!(asked > 10, "the spray ended before the pings could run");
    assert_eq!(answered, asked, "pings lost during the spray");
    assert_eq!(leaked, 0, "vm1/vm2 unicast flooded to the sprayer");
    let allowed = (STORM_PPS as f64 * (spray_secs + 1.0)) as u64 + STORM_PPS / 10;
    assert!(
        flood_at_vm1 <= allowed,
        "{flood_at_vm1} spray floods reached vm1, storm control allows {allowed}"
    );
    assert!(storm > 0);
    // Both VMs are still in the table, on their ports.
    let fdb = r.sw.ctl_text(&["fdb", "show"]);
    for (mac, port) in [(MAC1, "p1"), (MAC2, "p2")] {
        assert!(
            fdb.lines().any(|l| l.contains(mac) && l.contains(port)),
            "{mac} not on {port}:\n{fdb}"
        );
    }
    // The sprayer stayed within its limit.
    assert!(st.fdb.learned_entries <= 2048 + 2 + 1);
}
