//! Two `vswitch run` instances over GRE on real netdevs (the kernel here has no GRE
//! module, so GRE is tested between two vswitches).
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns vm1 eth0 198.19.0.1/24 ═ veth ═ vm0 ┐ ns n1: vswitch run   network "g", GRE key 70001
//!                                    ul0 198.18.0.1/24 ═ veth ═ u1 ┐
//!                                                                  │ ns fabric: br0 (Linux bridge)
//!                                    ul0 198.18.0.2/24 ═ veth ═ u2 ┘
//!  ns vm2 eth0 198.19.0.2/24 ═ veth ═ vm0 ┘ ns n2: vswitch run
//! ```
//!
//! Both ends of each underlay link a switch owns are AF_XDP sockets, which no AF_PACKET
//! tap sees, so the underlay goes through a Linux bridge in a "fabric" namespace (a
//! top-of-rack switch): frames are captured there, on the bridge port facing n1. Pings
//! pass both ways, then a GRE frame n1 sent is checked field by field (etherparse for the
//! Ethernet and IPv4 headers and the inner frame; etherparse has no GRE type, so the GRE
//! header by hand): IPv4 protocol 47, DF, TTL 64, addresses, lengths and checksum; GRE
//! C = 0, K = 1, S = 0, version 0, protocol 0x6558 (transparent Ethernet bridging), key =
//! the network's segment id.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use dataplane::control::proto::Reply;
use etherparse::{EtherType, Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice};
use netrun::{cores, parse_gre, pings, tcp_transfer, vm, TempDir, Vswitch};
use vswitch_tests::netns::{fmt_mac, root_or_skip, veth_pair, NetNs};
use vswitch_tests::ping::Pinger;
use vswitch_tests::rawsock::RawSocket;

const PREFIX: &str = "vsw-gre";
/// A key above 16 bits: all 32 bits of it must make it to the wire.
const KEY: u32 = 70_001;
const UL1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const UL2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const VM1: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const VM2: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const VM1_MAC: &str = "02:0a:00:00:00:01";
const VM2_MAC: &str = "02:0a:00:00:00:02";

fn config(socket: &std::path::Path, local: Ipv4Addr, remote: Ipv4Addr) -> String {
    format!(
        r#"
[switch]
workers = 1
control_socket = "{}"

[underlay]
port = "uplink"
ifname = "ul0"
local_ip = "{local}/24"

[[network]]
name = "g"
segment = "gre"
id = {KEY}
remote_vteps = ["{remote}"]

[[port]]
name = "vm0"
ifname = "vm0"
mode = "access"
network = "g"
"#,
        socket.display()
    )
}

/// Checks a frame n1 sent, field by field. `Err` when it is not a GRE packet carrying an
/// ICMP packet from vm1 to vm2 (the caller keeps looking); panics on a wrong field.
fn check_gre_frame(f: &[u8], n1_mac: [u8; 6], n2_mac: [u8; 6]) -> Result<(), &'static str> {
    let eth = Ethernet2HeaderSlice::from_slice(f).map_err(|_| "short")?;
    if eth.ether_type() != EtherType::IPV4 {
        return Err("not IPv4");
    }
    let ip = Ipv4HeaderSlice::from_slice(&f[14..]).map_err(|_| "bad IPv4")?;
    if ip.protocol() != IpNumber::GRE {
        return Err("not GRE");
    }
    let payload = &f[14 + ip.slice().len()..];
    let gre = parse_gre(payload).expect("truncated GRE header");
    let inner = &payload[gre.len..];
    let ie = Ethernet2HeaderSlice::from_slice(inner).map_err(|_| "short inner")?;
    if ie.ether_type() != EtherType::IPV4 {
        return Err("inner not IPv4");
    }
    let ii = Ipv4HeaderSlice::from_slice(&inner[14..]).map_err(|_| "inner not IPv4")?;
    if ii.protocol() != IpNumber::ICMP {
        return Err("inner not ICMP");
    }
    eprintln!(
        "n1 → n2 GRE frame ({} bytes): {eth:?}\n  {ip:?}\n  GRE {:02x?}",
        f.len(),
        &payload[..gre.len]
    );
    // Outer Ethernet: n1's underlay MAC to n2's (resolved by ARP through the bridge).
    assert_eq!(eth.source(), n1_mac, "outer source MAC");
    assert_eq!(eth.destination(), n2_mac, "outer destination MAC");
    // Outer IPv4.
    assert_eq!(ip.version(), 4);
    assert_eq!(ip.ihl(), 5, "no IPv4 options");
    assert_eq!(ip.protocol(), IpNumber(47));
    assert!(ip.dont_fragment(), "DF (underlay df = true by default)");
    assert!(!ip.more_fragments());
    assert_eq!(ip.fragments_offset().value(), 0);
    assert_eq!(ip.ttl(), 64, "TTL");
    assert_eq!(ip.source_addr(), UL1);
    assert_eq!(ip.destination_addr(), UL2);
    assert_eq!(
        usize::from(ip.total_len()),
        f.len() - 14,
        "IPv4 total length"
    );
    assert_eq!(
        ip.header_checksum(),
        ip.to_header().calc_header_checksum(),
        "IPv4 header checksum"
    );
    // GRE (RFC 2890): only the key.
    assert!(!gre.c, "GRE C bit");
    assert!(gre.k, "GRE K bit");
    assert!(!gre.s, "GRE S bit");
    assert_eq!(gre.reserved0, 0, "GRE reserved bits");
    assert_eq!(gre.version, 0, "GRE version");
    assert_eq!(
        gre.protocol, 0x6558,
        "GRE protocol type (transparent Ethernet bridging)"
    );
    assert_eq!(gre.key, Some(KEY), "GRE key = the network's segment id");
    assert_eq!(gre.len, 8, "GRE header with key only");
    // The inner frame: vm1's, unchanged.
    assert_eq!(fmt_mac(ie.source()), VM1_MAC, "inner source MAC");
    assert_eq!(fmt_mac(ie.destination()), VM2_MAC, "inner destination MAC");
    assert_eq!(ii.source_addr(), VM1);
    assert_eq!(ii.destination_addr(), VM2);
    assert_eq!(
        ii.header_checksum(),
        ii.to_header().calc_header_checksum(),
        "inner IPv4 header checksum"
    );
    assert_eq!(
        usize::from(ii.total_len()),
        inner.len() - 14,
        "inner length"
    );
    Ok(())
}

#[test]
fn two_vswitches_over_gre_ping_tcp_and_frames() {
    if !root_or_skip("two_vswitches_over_gre_ping_tcp_and_frames") {
        return;
    }
    let n1 = NetNs::new(PREFIX).unwrap();
    let n2 = NetNs::new(PREFIX).unwrap();
    let fabric = NetNs::new(PREFIX).unwrap();
    let vm1 = NetNs::new(PREFIX).unwrap();
    let vm2 = NetNs::new(PREFIX).unwrap();
    for ns in [&n1, &n2, &fabric] {
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
            .unwrap();
    }
    // GRE with key over IPv4: 1500 - 42.
    vm(&n1, "vm0", &vm1, VM1_MAC, &format!("{VM1}/24"), 1458);
    vm(&n2, "vm0", &vm2, VM2_MAC, &format!("{VM2}/24"), 1458);
    fabric
        .ip(&["link", "add", "br0", "type", "bridge"])
        .unwrap();
    veth_pair(&n1, "ul0", &fabric, "u1").unwrap();
    veth_pair(&n2, "ul0", &fabric, "u2").unwrap();
    vswitch_tests::netns::fastpath_napi(&fabric, "u1").unwrap();
    vswitch_tests::netns::fastpath_napi(&fabric, "u2").unwrap();
    // GRO merges GRE frames on the fabric's ports (the kernel has GRE GRO even without
    // the GRE module): the bridge would then forward super-packets that the veth's
    // software segmentation sends on with partial inner checksums (for a NIC to fill
    // in), which no NIC fills in on the way into a switch's underlay port. A fabric
    // port without TX checksum offload segments with full checksums.
    for u in ["u1", "u2"] {
        fabric.ethtool(&["-K", u, "tx", "off"]).unwrap();
    }
    for u in ["u1", "u2"] {
        fabric.ip(&["link", "set", u, "master", "br0"]).unwrap();
    }
    fabric.ip(&["link", "set", "br0", "up"]).unwrap();
    let n1_mac = n1.mac("ul0").unwrap();
    let n2_mac = n2.mac("ul0").unwrap();

    let dir = TempDir::new(n1.name());
    let c = cores();
    let (c1, c2) = (c[0], *c.last().unwrap());
    let s1 = Vswitch::socket_path(&dir.0, "n1");
    let s2 = Vswitch::socket_path(&dir.0, "n2");
    let sw1 = Vswitch::start(&n1, &dir.0, "n1", &config(&s1, UL1, UL2), c1);
    let sw2 = Vswitch::start(&n2, &dir.0, "n2", &config(&s2, UL2, UL1), c2);
    eprintln!("{}{}", sw1.log(), sw2.log());

    // What n1 sends into the fabric.
    let cap = RawSocket::open(&fabric, "u1").unwrap();
    let p1 = Pinger::open(&vm1, 0x7001).unwrap();
    let p2 = Pinger::open(&vm2, 0x7002).unwrap();
    netrun::warm_up(&p1, VM2);
    let ok = pings(&p1, VM2, 10);
    let stats = || format!("{}\n{}", sw1.ctl_text(&["stats"]), sw2.ctl_text(&["stats"]));
    assert!(ok >= 8, "vm1 → vm2 over GRE: {ok}/10 answered\n{}", stats());
    let ok = pings(&p2, VM1, 10);
    assert!(ok >= 8, "vm2 → vm1 over GRE: {ok}/10 answered\n{}", stats());

    let mut why = Vec::new();
    let frame = cap
        .recv_matching(Duration::from_secs(2), |rx| {
            match check_gre_frame(&rx.data, n1_mac, n2_mac) {
                Ok(()) => true,
                Err(e) => {
                    why.push(e);
                    false
                }
            }
        })
        .unwrap();
    assert!(
        frame.is_some(),
        "no GRE frame with an ICMP packet from vm1 captured in the fabric (skipped: {why:?})"
    );
    drop(cap);

    // Each switch has the other VM behind the other VTEP.
    for (sw, mac, vtep) in [(&sw1, VM2_MAC, UL2), (&sw2, VM1_MAC, UL1)] {
        let Reply::Fdb(fdb) = sw.ctl_json(&["fdb", "show"]) else {
            panic!("fdb show: not an fdb reply")
        };
        let row = fdb
            .entries
            .iter()
            .find(|e| e.mac == mac)
            .unwrap_or_else(|| panic!("{mac} not learned: {fdb:?}"));
        assert_eq!((row.network.as_str(), row.vtep), ("g", Some(vtep.into())));
    }
    eprintln!("{}", sw1.ctl_text(&["fdb", "show"]));

    // TCP both ways (checksums are end to end: GRE carries the inner frame unchanged).
    let t = tcp_transfer(&vm2, SocketAddrV4::new(VM2, 5001), &vm1, 4 << 20);
    eprintln!("TCP vm1 → vm2 over GRE: 4 MiB in {t:?}");
    let t = tcp_transfer(&vm1, SocketAddrV4::new(VM1, 5002), &vm2, 4 << 20);
    eprintln!("TCP vm2 → vm1 over GRE: 4 MiB in {t:?}");
    eprintln!("{}", stats());

    // With the fast path on, both switches encapsulated and decapsulated the
    // established GRE flows in the kernel, and no frame found its egress port missing
    // from the devmap. (That used to happen now and then for a whole short transfer: the
    // agent read a VM port's IFF_RUNNING, which lagged its carrier after the port was
    // set up; it reads the carrier now.)
    if vswitch_tests::netns::fastpath_args() == ["--fastpath"] {
        for sw in [&sw1, &sw2] {
            eprintln!("{}", sw.ctl_text(&["fastpath", "show"]));
        }
        let fps: Vec<_> = [&sw1, &sw2]
            .iter()
            .map(|sw| sw.stats().fastpath.expect("fast path counters"))
            .collect();
        assert!(
            fps.iter()
                .all(|fp| fp.get("encap_gre") > 0 && fp.get("decap_gre") > 0),
            "GRE did not take the fast path: {fps:?}"
        );
        assert!(
            fps.iter().all(|fp| fp.get("punt_no_dev") == 0),
            "an egress port was missing from the devmap: {fps:?}"
        );
    }
    sw1.stop();
    sw2.stop();
    for ns in [&n1, &n2] {
        for p in ["vm0", "ul0"] {
            let link = ns.ip(&["-d", "link", "show", "dev", p]).unwrap();
            assert!(!link.contains("xdp"), "XDP program left on {p}: {link}");
        }
    }
}
