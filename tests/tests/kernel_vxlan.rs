//! Interoperability of `encap`'s VXLAN encap/decap with the Linux kernel's VXLAN driver.
//!
//! Each test builds its own pair of network namespaces (needs root; otherwise it prints
//! `SKIPPED: needs root (network namespaces)` and passes):
//!
//! ```text
//!  ns A (kernel VTEP)                                   ns B (our userspace VTEP)
//!  vxlan0 198.19.0.1/24, VNI 5010, dstport 4789
//!    └── a0 198.18.0.1/24 | 2001:db8::1/64  ══ veth ══  b0 (no address) ← AF_PACKET socket
//! ```
//!
//! We play the remote VTEP 198.18.0.2 / 2001:db8::2 with `encap` on a raw socket on b0,
//! and behind it an overlay host 198.19.0.2 (MAC 02:00:00:00:19:02) that answers ARP and
//! ICMP echo. ns A has a static neighbour entry for our underlay address, so b0 needs
//! no address and ns B's kernel never answers the tunnel's UDP itself.
//!
//! Run with `--nocapture` to see what was observed of the kernel's packets.

// Test code: the helpers below are only called from the tests, where failing loudly is
// the point (clippy.toml's allow-*-in-tests covers only the `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use encap::arp::Operation;
use encap::tunnel::{
    decap_vxlan, flow_hash, v4_params, v6_params, DecapConfig, VxlanInfo, VxlanTemplate,
};
use encap::{ipv4, ipv6, udp, MacAddr, Vni, ETH_HLEN};
use vswitch_tests::netns::{fmt_mac, root_or_skip, veth_pair, wait_until, NetNs};
use vswitch_tests::ping::Pinger;
use vswitch_tests::pkt::{arp_frame, framed, parse_arp, Answered, OverlayHost};
use vswitch_tests::rawsock::{RawSocket, RxFrame};

/// Prefix of every namespace these tests create (`vsw-kvx-PID-N`).
const PREFIX: &str = "vsw-kvx";
const VNI: u32 = 5010;
const PORT: u16 = 4789;
const OVERLAY_A: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const OVERLAY_US: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x19, 0x02]);
const WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Underlay {
    V4,
    V6,
}

impl Underlay {
    /// (kernel VTEP address, our VTEP address, prefix length)
    fn addrs(self) -> (IpAddr, IpAddr, u8) {
        match self {
            Underlay::V4 => (
                Ipv4Addr::new(198, 18, 0, 1).into(),
                Ipv4Addr::new(198, 18, 0, 2).into(),
                24,
            ),
            Underlay::V6 => (
                "2001:db8::1".parse::<Ipv6Addr>().unwrap().into(),
                "2001:db8::2".parse::<Ipv6Addr>().unwrap().into(),
                64,
            ),
        }
    }
}

/// Two namespaces, a kernel VXLAN device in A, our raw socket on b0 in B.
/// Field order is drop order: the socket goes before the namespaces.
struct Rig {
    sock: RawSocket,
    tmpl: VxlanTemplate,
    a0_mac: MacAddr,
    b0_mac: MacAddr,
    vx_mac: MacAddr,
    kernel_ip: IpAddr,
    our_ip: IpAddr,
    a: NetNs,
    _b: NetNs,
}

/// What we saw of one VXLAN packet the kernel sent.
#[derive(Debug, Clone)]
struct Seen {
    info: VxlanInfo,
    outer_len: usize,
    /// IPv4 DF flag (None over IPv6).
    df: Option<bool>,
    /// IPv4 identification (None over IPv6).
    ip_id: Option<u16>,
    udp_csum: u16,
    /// IPv6 flow label (None over IPv4).
    flow_label: Option<u32>,
    csum_not_ready: bool,
    inner: Vec<u8>,
}

impl Rig {
    /// Builds the topology. With `tx_csum_offload` false, checksum offload is turned off on
    /// a0 so the frames b0 receives carry final UDP checksums (see `offload_partial_checksum`).
    fn new(u: Underlay, tx_csum_offload: bool) -> Rig {
        let a = NetNs::new(PREFIX).expect("create ns A");
        let b = NetNs::new(PREFIX).expect("create ns B");
        // ns B is only a place for b0: keep its kernel quiet on IPv6.
        b.sysctl("net.ipv6.conf.default.disable_ipv6", "1").unwrap();
        b.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
        veth_pair(&a, "a0", &b, "b0").expect("veth pair");
        let a0_mac = MacAddr(a.mac("a0").unwrap());
        let b0_mac = MacAddr(b.mac("b0").unwrap());
        if !tx_csum_offload {
            a.ethtool(&["-K", "a0", "tx", "off"])
                .expect("ethtool -K a0 tx off");
        }
        let (kernel_ip, our_ip, plen) = u.addrs();
        let cidr = format!("{kernel_ip}/{plen}");
        let (ks, os) = (kernel_ip.to_string(), our_ip.to_string());
        match u {
            Underlay::V4 => {
                a.sysctl("net.ipv6.conf.a0.disable_ipv6", "1").unwrap();
                a.ip(&["addr", "add", &cidr, "dev", "a0"]).unwrap();
            }
            Underlay::V6 => {
                a.ip(&["addr", "add", &cidr, "dev", "a0", "nodad"]).unwrap();
                let IpAddr::V6(k) = kernel_ip else {
                    unreachable!()
                };
                a.wait_ipv6_addr("a0", k, WAIT).unwrap();
            }
        }
        // We are the VTEP at `our_ip`: let A resolve it without asking anyone.
        let mac = fmt_mac(b0_mac.0);
        a.ip(&[
            "neigh",
            "replace",
            &os,
            "lladdr",
            &mac,
            "dev",
            "a0",
            "nud",
            "permanent",
        ])
        .unwrap();
        let vni = VNI.to_string();
        let port = PORT.to_string();
        a.ip(&[
            "link", "add", "vxlan0", "type", "vxlan", "id", &vni, "dstport", &port, "local", &ks,
            "remote", &os, "dev", "a0",
        ])
        .expect("create kernel vxlan device");
        // No IPv6 inside the overlay: only the traffic the tests make goes through it.
        a.sysctl("net.ipv6.conf.vxlan0.disable_ipv6", "1").unwrap();
        a.ip(&["addr", "add", &format!("{OVERLAY_A}/24"), "dev", "vxlan0"])
            .unwrap();
        a.ip(&["link", "set", "vxlan0", "up"]).unwrap();
        let vx_mac = MacAddr(a.mac("vxlan0").unwrap());
        let sock = RawSocket::open(&b, "b0").expect("raw socket on b0");
        let params = match (our_ip, kernel_ip) {
            (IpAddr::V4(o), IpAddr::V4(k)) => v4_params(b0_mac, a0_mac, o, k),
            (IpAddr::V6(o), IpAddr::V6(k)) => v6_params(b0_mac, a0_mac, o, k),
            _ => unreachable!(),
        };
        let tmpl = VxlanTemplate::new(&params, PORT).unwrap();
        Rig {
            sock,
            tmpl,
            a0_mac,
            b0_mac,
            vx_mac,
            kernel_ip,
            our_ip,
            a,
            _b: b,
        }
    }

    /// Encapsulates `inner` with our template and sends it to the kernel VTEP. `corrupt`
    /// may change the encapsulated bytes before they leave.
    fn send_inner(&self, inner: &[u8], vni: u32, corrupt: impl FnOnce(&mut [u8])) {
        let mut f = framed(inner, 128, 0).unwrap();
        self.tmpl
            .encap(&mut f, Vni::try_new(vni).unwrap(), flow_hash(inner), 0)
            .expect("encap");
        corrupt(f.data_mut());
        self.sock.send(f.data()).expect("send on b0");
    }

    /// Decapsulates one received frame. `Ok(None)`: not VXLAN at all (ARP, ND... on the
    /// underlay). `Err`: VXLAN that `decap_vxlan` refused.
    fn decap(&self, rx: &RxFrame) -> Result<Option<Seen>, String> {
        let d = &rx.data;
        let mut f = framed(d, 0, 0).unwrap();
        match decap_vxlan(&mut f, &DecapConfig::default()) {
            Ok(info) => {
                let (df, ip_id, flow_label, udp_at) = if info.outer.src_ip().is_ipv4() {
                    let ip = ipv4::Packet::new_checked(&d[ETH_HLEN..]).unwrap();
                    (
                        Some(ip.dont_frag()),
                        Some(ip.ident()),
                        None,
                        ETH_HLEN + ip.header_len(),
                    )
                } else {
                    let ip = ipv6::Packet::new_checked(&d[ETH_HLEN..]).unwrap();
                    (
                        None,
                        None,
                        Some(ip.flow_label()),
                        ETH_HLEN + ipv6::HEADER_LEN,
                    )
                };
                let u = udp::Packet::new_checked(&d[udp_at..]).unwrap();
                Ok(Some(Seen {
                    info,
                    outer_len: d.len(),
                    df,
                    ip_id,
                    udp_csum: u.checksum(),
                    flow_label,
                    csum_not_ready: rx.csum_not_ready,
                    inner: f.data().to_vec(),
                }))
            }
            Err(e) if e.kind == encap::ErrorKind::NotMatched => Ok(None),
            Err(e) => Err(format!(
                "decap_vxlan refused a frame from the kernel: {e} (csum_not_ready={}, \
                 csum_valid={}): {}",
                rx.csum_not_ready,
                rx.csum_valid,
                hex(d)
            )),
        }
    }

    /// Waits for a VXLAN packet from the kernel whose decapsulation satisfies `pred`.
    /// Panics if a VXLAN packet fails to decapsulate.
    fn recv_vxlan(&self, timeout: Duration, mut pred: impl FnMut(&Seen) -> bool) -> Option<Seen> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let rx = self.sock.recv_frame(left).expect("recv on b0")?;
            if let Some(seen) = self.decap(&rx).unwrap_or_else(|e| panic!("{e}")) {
                if pred(&seen) {
                    return Some(seen);
                }
            }
        }
    }

    /// Plays the overlay host behind our VTEP until `stop`: answers ARP and echo requests
    /// that come through the tunnel. Returns what it answered and saw.
    fn serve(&self, host: &OverlayHost, stop: &AtomicBool) -> (Vec<Answered>, Vec<Seen>) {
        let (mut answered, mut seen) = (Vec::new(), Vec::new());
        let give_up = Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
            let Some(rx) = self.sock.recv_frame(Duration::from_millis(50)).unwrap() else {
                continue;
            };
            let Some(s) = self.decap(&rx).unwrap_or_else(|e| panic!("{e}")) else {
                continue;
            };
            assert_eq!(s.info.vni.get(), VNI);
            if let Some((what, reply)) = host.answer(&s.inner) {
                self.send_inner(&reply, VNI, |_| {});
                answered.push(what);
            }
            seen.push(s);
        }
        (answered, seen)
    }

    fn vxlan0_rx_packets(&self) -> u64 {
        self.a.link_stats("vxlan0").unwrap().rx_packets
    }

    /// Does vxlan0's FDB hold `mac` pointing at our VTEP?
    fn fdb_learned(&self, mac: MacAddr) -> bool {
        let fdb = self.a.bridge(&["fdb", "show", "dev", "vxlan0"]).unwrap();
        let want = format!("dst {}", self.our_ip);
        fdb.lines()
            .any(|l| l.starts_with(&fmt_mac(mac.0)) && l.contains(&want))
    }

    /// Opens a UDP socket in A and sends one datagram into the overlay: the kernel then has
    /// to resolve `dst` with ARP through the tunnel.
    fn poke_overlay(&self, dst: Ipv4Addr) {
        let s = self
            .a
            .run_in(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))
            .unwrap()
            .unwrap();
        s.send_to(b"poke", (dst, 9)).unwrap();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn describe(tag: &str, s: &Seen) {
    eprintln!(
        "[{tag}] kernel VXLAN packet: {} bytes, {} -> {}, udp sport {}, udp csum {:#06x}{}, \
         ttl/hop {}, tos {:#04x}, DF {:?}, IP id {:?}, flow label {:?}, inner {} bytes",
        s.outer_len,
        s.info.outer.src_ip(),
        s.info.outer.dst_ip(),
        s.info.src_port,
        s.udp_csum,
        if s.csum_not_ready {
            " (partial: offload)"
        } else {
            ""
        },
        s.info.outer.ttl(),
        s.info.outer.tos(),
        s.df,
        s.ip_id,
        s.flow_label,
        s.inner.len(),
    );
}

/// Test 1/3: the kernel's ARP request, encapsulated by the kernel, decapsulates with us.
fn kernel_to_us(u: Underlay, tag: &str) {
    let rig = Rig::new(u, false);
    rig.poke_overlay(OVERLAY_US);
    let seen = rig
        .recv_vxlan(WAIT, |s| parse_arp(&s.inner).is_some())
        .expect("no VXLAN-encapsulated ARP request from the kernel within 3 s");
    describe(tag, &seen);
    assert_eq!(seen.info.vni.get(), VNI);
    assert_eq!(seen.info.outer.src_ip(), rig.kernel_ip);
    assert_eq!(seen.info.outer.dst_ip(), rig.our_ip);
    assert_eq!(seen.info.outer.src_mac(), rig.a0_mac);
    assert_eq!(seen.info.outer.dst_mac(), rig.b0_mac);
    // The kernel takes VXLAN source ports from the namespace's ephemeral port range
    // (its `srcport 0 0` default), not from RFC 7348's 49152-65535.
    let range = rig
        .a
        .run_in(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range"))
        .unwrap()
        .unwrap();
    let r: Vec<u16> = range
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        (r[0]..=r[1]).contains(&seen.info.src_port),
        "source port {} outside ip_local_port_range {range}",
        seen.info.src_port
    );
    let (eth, arp) = parse_arp(&seen.inner).unwrap();
    assert!(eth.dst.is_broadcast(), "inner dst {}", eth.dst);
    assert_eq!(eth.src, rig.vx_mac);
    assert_eq!(arp.operation, Operation::Request);
    assert_eq!(arp.sender_mac, rig.vx_mac);
    assert_eq!(arp.sender_ip, OVERLAY_A);
    assert_eq!(arp.target_ip, OVERLAY_US);
}

/// Test 2/3: we answer through the tunnel; the kernel pings our userspace host.
fn us_to_kernel(u: Underlay, tag: &str) {
    let rig = Rig::new(u, false);
    let host = OverlayHost {
        mac: OUR_MAC,
        ip: OVERLAY_US,
    };
    let pinger = Pinger::open(&rig.a, 0x5010).expect("raw ICMP socket in A");
    // vxlan0's MTU is the underlay's 1500 minus the encapsulation (outer IP, UDP, VXLAN
    // and the inner Ethernet header: 50 or 70 bytes, as our template's overhead counts the
    // outer Ethernet header instead); a ping of this payload fills it (20 bytes of IPv4
    // header, 8 of ICMP).
    let vx_mtu = rig.a.mtu("vxlan0").unwrap() as usize;
    assert_eq!(vx_mtu, 1500 - rig.tmpl.overhead());
    assert_eq!(vx_mtu + ETH_HLEN, rig.tmpl.max_inner_len());
    let max_payload = vx_mtu - 28;
    let stop = AtomicBool::new(false);
    let (rtts, (answered, seen)) = std::thread::scope(|s| {
        let server = s.spawn(|| rig.serve(&host, &stop));
        // Three ordinary pings (the second with an odd-length frame: the IPv6 UDP
        // checksum then ends on a half word), then one as large as vxlan0's MTU allows:
        // its encapsulation is exactly a 1500-byte underlay packet, both ways.
        let sizes = [56, 57, 56, max_payload];
        let rtts: Vec<_> = (1..=4u16)
            .zip(sizes)
            .map(|(seq, len)| pinger.ping(OVERLAY_US, seq, len, WAIT).unwrap())
            .collect();
        stop.store(true, Ordering::Relaxed);
        (rtts, server.join().unwrap())
    });
    for s in &seen {
        describe(tag, s);
    }
    eprintln!("[{tag}] ping rtts {rtts:?}, answered {answered:?}");
    assert!(
        rtts.iter().all(Option::is_some),
        "ping through the kernel's VXLAN to our userspace host failed: {rtts:?}, we answered {answered:?}"
    );
    assert!(answered.contains(&Answered::Arp));
    for seq in 1..=3 {
        assert!(
            answered.contains(&Answered::Echo(seq)),
            "echo {seq} not answered"
        );
    }
    // The kernel learned our inner MAC behind our VTEP, and our overlay address.
    assert!(
        rig.fdb_learned(OUR_MAC),
        "fdb: {}",
        rig.a.bridge(&["fdb", "show", "dev", "vxlan0"]).unwrap()
    );
    let neigh = rig
        .a
        .ip(&["neigh", "show", &OVERLAY_US.to_string(), "dev", "vxlan0"])
        .unwrap();
    assert!(
        neigh.contains(&format!("lladdr {}", fmt_mac(OUR_MAC.0)))
            && ["REACHABLE", "STALE", "DELAY", "PROBE"]
                .iter()
                .any(|st| neigh.contains(st)),
        "neigh: {neigh}"
    );
    eprintln!("[{tag}] kernel neigh: {}", neigh.trim());
}

#[test]
fn v4_kernel_to_us() {
    if !root_or_skip("v4_kernel_to_us") {
        return;
    }
    kernel_to_us(Underlay::V4, "v4");
}

#[test]
fn v4_us_to_kernel_ping() {
    if !root_or_skip("v4_us_to_kernel_ping") {
        return;
    }
    us_to_kernel(Underlay::V4, "v4");
}

#[test]
fn v6_kernel_to_us() {
    if !root_or_skip("v6_kernel_to_us") {
        return;
    }
    kernel_to_us(Underlay::V6, "v6");
}

#[test]
fn v6_us_to_kernel_ping() {
    if !root_or_skip("v6_us_to_kernel_ping") {
        return;
    }
    us_to_kernel(Underlay::V6, "v6");
}

/// With a0's TX checksum offload left on (veth's default), the kernel hands the frame to
/// b0 with a *partial* UDP checksum (`TP_STATUS_CSUMNOTREADY`): only the pseudo-header sum,
/// to be finished by a NIC that does not exist. The UDP checksum is in use over IPv4 too
/// (the kernel's VXLAN default is `udpcsum`). `decap_vxlan` recognises that partial form
/// (the checksum field holds the pseudo-header sum alone) and accepts it, as the kernel
/// does from a local device; the same packet with its checksum changed is refused.
fn offload_partial_checksum(u: Underlay, tag: &str) {
    let rig = Rig::new(u, true);
    rig.poke_overlay(OVERLAY_US);
    let rx = rig
        .sock
        .recv_matching(WAIT, |rx| {
            // An outer UDP to our port: VXLAN whether or not it decapsulates.
            let l4 = if rx.data.get(12..14) == Some(&[0x08, 0x00][..]) {
                34
            } else {
                54
            };
            rx.data.len() > l4 + 8 && rx.data[l4 + 2..l4 + 4] == PORT.to_be_bytes()
        })
        .unwrap()
        .expect("no VXLAN packet from the kernel within 3 s");
    let res = rig.decap(&rx);
    eprintln!(
        "[{tag}] offload on: csum_not_ready={} csum_valid={} decap: {}",
        rx.csum_not_ready,
        rx.csum_valid,
        match &res {
            Ok(Some(s)) => format!("ok, udp csum {:#06x}", s.udp_csum),
            Ok(None) => "not VXLAN".into(),
            Err(e) => e.clone(),
        }
    );
    // Partial or finished by the kernel before the tap: either way it decapsulates.
    assert!(matches!(res, Ok(Some(_))), "{res:?}");
    if rx.csum_not_ready {
        // A partial checksum is recognised exactly: one bit off and it is refused.
        let mut bad = rx.clone();
        let l4 = if bad.data.get(12..14) == Some(&[0x08, 0x00][..]) {
            34
        } else {
            54
        };
        bad.data[l4 + 7] ^= 0x01;
        let e = rig
            .decap(&bad)
            .expect_err("a corrupted partial checksum must not verify");
        assert!(e.contains("udp: bad checksum"), "{e}");
    }
}

/// One frame of a negative check: a distinct inner source MAC, so that the kernel's FDB
/// tells whether it accepted the packet.
struct Case {
    what: &'static str,
    mac: MacAddr,
    vni: u32,
    mutate: fn(&mut [u8], &Rig),
    accept: bool,
    /// Counted by the kernel as a UDP checksum error.
    csum_error: bool,
}

/// Offsets into an encapsulated frame.
fn udp_at(d: &[u8]) -> usize {
    if d[12..14] == [0x08, 0x00] {
        ETH_HLEN + ipv4::HEADER_LEN
    } else {
        ETH_HLEN + ipv6::HEADER_LEN
    }
}

/// Recomputes the outer UDP checksum (IPv4: makes it non-zero).
fn fill_udp_csum(d: &mut [u8], rig: &Rig) {
    let at = udp_at(d);
    let mut u = udp::Packet::new_unchecked(&mut d[at..]);
    match (rig.our_ip, rig.kernel_ip) {
        (IpAddr::V4(s), IpAddr::V4(t)) => u.fill_checksum_v4(s, t),
        (IpAddr::V6(s), IpAddr::V6(t)) => u.fill_checksum_v6(&s, &t),
        _ => unreachable!(),
    }
}

/// Makes the outer UDP checksum wrong (and non-zero: zero means "none" over IPv4).
fn break_udp_csum(d: &mut [u8], rig: &Rig) {
    fill_udp_csum(d, rig);
    let at = udp_at(d) + 6;
    let c = u16::from_be_bytes([d[at], d[at + 1]]);
    // A change of 0x00ff (or 0x0f00) is never a ones'-complement equivalent value.
    let bad = match c ^ 0x00ff {
        0 | 0xffff => c ^ 0x0f00,
        b => b,
    };
    d[at..at + 2].copy_from_slice(&bad.to_be_bytes());
}

fn zero_udp_csum(d: &mut [u8], _: &Rig) {
    let at = udp_at(d) + 6;
    d[at..at + 2].fill(0);
}

fn keep(_: &mut [u8], _: &Rig) {}

/// VXLAN flags byte 0x08 | a reserved bit (checksum kept valid).
fn reserved_flag(d: &mut [u8], rig: &Rig) {
    let at = udp_at(d) + 8;
    d[at] |= 0x01;
    fill_udp_csum(d, rig);
}

/// The reserved byte after the VNI set (checksum kept valid).
fn reserved_byte(d: &mut [u8], rig: &Rig) {
    let at = udp_at(d) + 8 + 7;
    d[at] = 0x01;
    fill_udp_csum(d, rig);
}

/// VXLAN I flag cleared (checksum kept valid).
fn no_i_flag(d: &mut [u8], rig: &Rig) {
    let at = udp_at(d) + 8;
    d[at] = 0;
    fill_udp_csum(d, rig);
}

/// Sends every case (the refused ones first), then checks the kernel's FDB, vxlan0's
/// receive counter and the UDP checksum-error counter.
fn negative(u: Underlay, tag: &str, cases: &[Case]) {
    let rig = Rig::new(u, false);
    let csum_errors = || match u {
        Underlay::V4 => rig.a.snmp("Udp", "InCsumErrors").unwrap(),
        Underlay::V6 => rig.a.snmp6("Udp6InCsumErrors").unwrap(),
    };
    let (rx0, err0) = (rig.vxlan0_rx_packets(), csum_errors());
    let mut order: Vec<&Case> = cases.iter().filter(|c| !c.accept).collect();
    order.extend(cases.iter().filter(|c| c.accept));
    for (i, c) in order.iter().enumerate() {
        // An ARP request for the kernel's overlay address from a MAC of this case.
        let inner = arp_frame(
            MacAddr::BROADCAST,
            c.mac,
            &encap::arp::ArpRepr {
                operation: Operation::Request,
                sender_mac: c.mac,
                sender_ip: Ipv4Addr::new(198, 19, 0, 100 + i as u8),
                target_mac: MacAddr::ZERO,
                target_ip: OVERLAY_A,
            },
        );
        rig.send_inner(&inner, c.vni, |d| (c.mutate)(d, &rig));
    }
    let accepted: Vec<&Case> = cases.iter().filter(|c| c.accept).collect();
    assert!(
        wait_until(WAIT, Duration::from_millis(10), || accepted
            .iter()
            .all(|c| rig.fdb_learned(c.mac))),
        "the kernel did not learn the MACs of the good packets: {}",
        rig.a.bridge(&["fdb", "show", "dev", "vxlan0"]).unwrap()
    );
    // The refused ones went first; give any straggler a moment all the same.
    std::thread::sleep(Duration::from_millis(50));
    let fdb = rig.a.bridge(&["fdb", "show", "dev", "vxlan0"]).unwrap();
    for c in cases {
        let learned = rig.fdb_learned(c.mac);
        eprintln!("[{tag}] {:<36} accepted by the kernel: {learned}", c.what);
        assert_eq!(learned, c.accept, "{}: fdb {fdb}", c.what);
    }
    let (rx1, err1) = (rig.vxlan0_rx_packets(), csum_errors());
    eprintln!(
        "[{tag}] vxlan0 rx packets +{}, UDP checksum errors +{}",
        rx1 - rx0,
        err1 - err0
    );
    assert_eq!(rx1 - rx0, accepted.len() as u64, "vxlan0 rx packets");
    let csum_errors = cases.iter().filter(|c| c.csum_error).count() as u64;
    assert_eq!(err1 - err0, csum_errors, "UDP checksum errors");
}

const fn mac(last: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0x66, last])
}

#[test]
fn v4_offload_partial_checksum() {
    if !root_or_skip("v4_offload_partial_checksum") {
        return;
    }
    offload_partial_checksum(Underlay::V4, "v4");
}

#[test]
fn v6_offload_partial_checksum() {
    if !root_or_skip("v6_offload_partial_checksum") {
        return;
    }
    offload_partial_checksum(Underlay::V6, "v6");
}

#[test]
fn v4_kernel_refuses_bad_packets() {
    if !root_or_skip("v4_kernel_refuses_bad_packets") {
        return;
    }
    #[rustfmt::skip]
    let cases = [
        Case { what: "good, UDP checksum 0 (our default)", mac: mac(1), vni: VNI, mutate: keep, accept: true, csum_error: false },
        Case { what: "good, valid non-zero UDP checksum", mac: mac(2), vni: VNI, mutate: fill_udp_csum, accept: true, csum_error: false },
        Case { what: "wrong VNI (5011)", mac: mac(3), vni: VNI + 1, mutate: keep, accept: false, csum_error: false },
        Case { what: "wrong UDP checksum", mac: mac(4), vni: VNI, mutate: break_udp_csum, accept: false, csum_error: true },
        Case { what: "VXLAN I flag clear", mac: mac(5), vni: VNI, mutate: no_i_flag, accept: false, csum_error: false },
        Case { what: "VXLAN reserved flag bit set", mac: mac(6), vni: VNI, mutate: reserved_flag, accept: false, csum_error: false },
        Case { what: "VXLAN reserved byte set", mac: mac(7), vni: VNI, mutate: reserved_byte, accept: false, csum_error: false },
    ];
    negative(Underlay::V4, "v4", &cases);
}

#[test]
fn v6_kernel_refuses_bad_packets() {
    if !root_or_skip("v6_kernel_refuses_bad_packets") {
        return;
    }
    #[rustfmt::skip]
    let cases = [
        Case { what: "good (our UDP checksum)", mac: mac(1), vni: VNI, mutate: keep, accept: true, csum_error: false },
        Case { what: "wrong VNI (5011)", mac: mac(3), vni: VNI + 1, mutate: keep, accept: false, csum_error: false },
        Case { what: "wrong UDP checksum", mac: mac(4), vni: VNI, mutate: break_udp_csum, accept: false, csum_error: true },
        Case { what: "zero UDP checksum (noudp6zerocsumrx)", mac: mac(8), vni: VNI, mutate: zero_udp_csum, accept: false, csum_error: true },
    ];
    negative(Underlay::V6, "v6", &cases);
}
