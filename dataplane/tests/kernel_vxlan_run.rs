//! VXLAN interoperability of `vswitch run` with the Linux kernel's VXLAN driver, on real
//! netdevs: the remote VTEP is a kernel `vxlan` device bridged to a host.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.
//!
//! ```text
//!  ns vm   eth0 198.19.0.1/24 ══ veth ══ vm0 ┐ ns sw: vswitch run, network "t" (VXLAN 5001)
//!                                      uplink ul0 198.18.0.1/24 (AF_XDP, no kernel address)
//!                                              ║ veth (underlay)
//!  ns kv   ul0 198.18.0.2/24 ── vxlan0 (VNI 5001, dstport 4789, remote 198.18.0.1)
//!          br0 (Linux bridge): vxlan0 + h0
//!                                              ║ veth
//!  ns host eth0 198.19.0.2/24
//! ```
//!
//! Pings both ways, a TCP transfer of 4 MiB each way (byte count and hash checked), the
//! kernel's and vswitch's MAC tables, and a VXLAN frame vswitch sent, captured on the
//! kernel VTEP's underlay netdev (AF_PACKET) and checked field by field with etherparse:
//! outer Ethernet addresses, IPv4 (version, header length, DF, no fragment, TTL, protocol,
//! addresses, length, header checksum), UDP (source port in 49152–65535, destination 4789,
//! length, checksum zero or valid), the VXLAN header (I flag, reserved bits, VNI) and the
//! inner frame. Then the same over an IPv6 underlay (2001:2:0:1::/64, RFC 5180's
//! benchmarking prefix), where the UDP checksum is mandatory both ways: the kernel counts
//! any it refuses, and a captured frame's is checked; with the fast path on, its IPv6
//! encapsulation and decapsulation must both have carried frames.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::time::Duration;

use dataplane::control::proto::Reply;
use etherparse::{EtherType, Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, UdpHeaderSlice};
use netrun::{cores, pings, tcp_transfer, vm, TempDir, Vswitch};
use vswitch_tests::netns::{fmt_mac, root_or_skip, veth_pair, NetNs};
use vswitch_tests::ping::Pinger;
use vswitch_tests::rawsock::RawSocket;

const PREFIX: &str = "vsw-kvr";
const VNI: u32 = 5001;
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const KERNEL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LOCAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1);
const KERNEL6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 2);
const VM_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const HOST_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const VM_MAC: &str = "02:0a:00:00:00:01";
const HOST_MAC: &str = "02:0a:00:00:00:02";
const MIB4: usize = 4 << 20;

fn config(socket: &std::path::Path, local: IpAddr, prefix: u8, kernel: IpAddr) -> String {
    format!(
        r#"
[switch]
workers = 1
control_socket = "{}"

[underlay]
port = "uplink"
ifname = "ul0"
local_ip = "{local}/{prefix}"

[[network]]
name = "t"
segment = "vxlan"
id = {VNI}
remote_vteps = ["{kernel}"]

[[port]]
name = "vm0"
ifname = "vm0"
mode = "access"
network = "t"
"#,
        socket.display()
    )
}

/// Checks one VXLAN-over-IPv6 frame vswitch sent to the kernel VTEP: addresses, lengths,
/// hop limit, the UDP checksum (mandatory over IPv6), the VXLAN header and the inner
/// frame. `Err` when it is not a VXLAN packet carrying an ICMP frame from the VM.
fn check_vxlan6_frame(f: &[u8]) -> Result<(), &'static str> {
    let eth = Ethernet2HeaderSlice::from_slice(f).map_err(|_| "short")?;
    if eth.ether_type() != EtherType::IPV6 {
        return Err("not IPv6");
    }
    let ip = etherparse::Ipv6HeaderSlice::from_slice(&f[14..]).map_err(|_| "bad IPv6")?;
    if ip.next_header() != IpNumber::UDP {
        return Err("not UDP");
    }
    let l4 = &f[54..];
    let udp = UdpHeaderSlice::from_slice(l4).map_err(|_| "short UDP")?;
    if udp.destination_port() != 4789 {
        return Err("not VXLAN");
    }
    let inner = &l4[16..];
    let ii = Ipv4HeaderSlice::from_slice(inner.get(14..).ok_or("short")?)
        .map_err(|_| "inner not IPv4")?;
    if ii.protocol() != IpNumber::ICMP {
        return Err("inner not ICMP");
    }
    eprintln!(
        "vswitch → kernel VXLAN/IPv6 frame ({} bytes): {ip:?}\n  {udp:?}",
        f.len()
    );
    assert_eq!(ip.source_addr(), LOCAL6);
    assert_eq!(ip.destination_addr(), KERNEL6);
    assert_eq!(ip.hop_limit(), 64, "hop limit");
    assert_eq!(
        usize::from(ip.payload_length()),
        f.len() - 54,
        "IPv6 payload length"
    );
    assert_eq!(usize::from(udp.length()), l4.len(), "UDP length");
    assert!((49152..=65535).contains(&udp.source_port()));
    let want = udp
        .to_header()
        .calc_checksum_ipv6(&ip.to_header(), &l4[8..])
        .unwrap();
    assert_ne!(udp.checksum(), 0, "a zero UDP checksum over IPv6");
    assert_eq!(udp.checksum(), want, "UDP checksum");
    assert_eq!(&l4[8..12], &[0x08, 0, 0, 0], "VXLAN flags and reserved");
    assert_eq!(u32::from_be_bytes([0, l4[12], l4[13], l4[14]]), VNI, "VNI");
    assert_eq!(l4[15], 0, "VXLAN reserved");
    assert_eq!(
        fmt_mac(inner[6..12].try_into().unwrap()),
        VM_MAC,
        "inner source MAC"
    );
    Ok(())
}

/// Checks one frame vswitch sent to the kernel VTEP, field by field. `Err` when it is not
/// a VXLAN packet carrying an ICMP frame from the VM (the caller keeps looking); panics
/// on a VXLAN packet with a wrong field.
fn check_vxlan_frame(f: &[u8], sw_mac: [u8; 6], kv_mac: [u8; 6]) -> Result<(), &'static str> {
    let eth = Ethernet2HeaderSlice::from_slice(f).map_err(|_| "short")?;
    if eth.ether_type() != EtherType::IPV4 {
        return Err("not IPv4");
    }
    let ip = Ipv4HeaderSlice::from_slice(&f[14..]).map_err(|_| "bad IPv4")?;
    if ip.protocol() != IpNumber::UDP {
        return Err("not UDP");
    }
    let l4 = &f[14 + ip.slice().len()..];
    let udp = UdpHeaderSlice::from_slice(l4).map_err(|_| "short UDP")?;
    if udp.destination_port() != 4789 {
        return Err("not VXLAN");
    }
    let vx = &l4[8..];
    let inner = &vx[8..];
    let ie = Ethernet2HeaderSlice::from_slice(inner).unwrap();
    let ii = Ipv4HeaderSlice::from_slice(&inner[14..]).map_err(|_| "inner not IPv4")?;
    if ii.protocol() != IpNumber::ICMP {
        return Err("inner not ICMP");
    }
    eprintln!(
        "vswitch → kernel VXLAN frame ({} bytes): {eth:?}\n  {ip:?}\n  {udp:?}",
        f.len()
    );
    // Outer Ethernet: vswitch's underlay MAC to the kernel VTEP's (resolved by ARP).
    assert_eq!(eth.source(), sw_mac, "outer source MAC");
    assert_eq!(eth.destination(), kv_mac, "outer destination MAC");
    // Outer IPv4.
    assert_eq!(ip.version(), 4);
    assert_eq!(ip.ihl(), 5, "no IPv4 options");
    assert!(ip.dont_fragment(), "DF (underlay df = true by default)");
    assert!(!ip.more_fragments());
    assert_eq!(ip.fragments_offset().value(), 0);
    assert_eq!(ip.ttl(), 64, "TTL");
    assert_eq!(ip.source_addr(), LOCAL);
    assert_eq!(ip.destination_addr(), KERNEL);
    assert_eq!(
        usize::from(ip.total_len()),
        f.len() - 14,
        "IPv4 total length"
    );
    let hdr = ip.to_header();
    assert_eq!(
        ip.header_checksum(),
        hdr.calc_header_checksum(),
        "IPv4 header checksum"
    );
    // UDP.
    assert!(
        (49152..=65535).contains(&udp.source_port()),
        "UDP source port {} outside 49152-65535",
        udp.source_port()
    );
    assert_eq!(usize::from(udp.length()), l4.len(), "UDP length");
    if udp.checksum() != 0 {
        let want = udp.to_header().calc_checksum_ipv4(&hdr, &l4[8..]).unwrap();
        assert_eq!(udp.checksum(), want, "UDP checksum");
    }
    // VXLAN: flags I, everything reserved zero, the network's VNI.
    assert_eq!(vx[0], 0x08, "VXLAN flags");
    assert_eq!(&vx[1..4], &[0, 0, 0], "VXLAN reserved");
    assert_eq!(u32::from_be_bytes([0, vx[4], vx[5], vx[6]]), VNI, "VNI");
    assert_eq!(vx[7], 0, "VXLAN reserved");
    // The inner frame: the VM's, unchanged.
    assert_eq!(fmt_mac(ie.source()), VM_MAC, "inner source MAC");
    assert_eq!(fmt_mac(ie.destination()), HOST_MAC, "inner destination MAC");
    assert_eq!(ii.source_addr(), VM_IP);
    assert_eq!(ii.destination_addr(), HOST_IP);
    assert_eq!(
        ii.header_checksum(),
        ii.to_header().calc_header_checksum(),
        "inner IPv4 header checksum"
    );
    Ok(())
}

#[test]
fn vswitch_run_with_kernel_vxlan_ping_tcp_and_frames() {
    if !root_or_skip("vswitch_run_with_kernel_vxlan_ping_tcp_and_frames") {
        return;
    }
    kernel_vxlan(false, false);
}

/// The same over an IPv6 underlay (the kernel VTEP without TX offload, so that its UDP
/// checksums are complete and the fast path, when on, decapsulates them itself).
#[test]
fn vswitch_run_with_kernel_vxlan_over_ipv6() {
    if !root_or_skip("vswitch_run_with_kernel_vxlan_over_ipv6") {
        return;
    }
    kernel_vxlan(false, true);
}

/// The same with the kernel VTEP's underlay veth left with TX checksum offload on: the
/// kernel's VXLAN packets reach vswitch with a *partial* outer UDP checksum
/// (CHECKSUM_PARTIAL never completed, as no NIC exists). Decapsulation recognises the
/// partial form (the pseudo-header sum alone) and accepts it, as the kernel does from a
/// local device; this test found the bug (every packet was `tunnel_malformed`).
#[test]
fn kernel_vtep_with_tx_offload() {
    if !root_or_skip("kernel_vtep_with_tx_offload") {
        return;
    }
    kernel_vxlan(true, false);
}

/// The whole scenario; `kernel_tx_offload` leaves TX checksum offload on for the kernel
/// VTEP's underlay netdev; `v6`: over IPv6.
fn kernel_vxlan(kernel_tx_offload: bool, v6: bool) {
    let sw = NetNs::new(PREFIX).unwrap();
    let vmns = NetNs::new(PREFIX).unwrap();
    let kv = NetNs::new(PREFIX).unwrap();
    let host = NetNs::new(PREFIX).unwrap();
    let (local, kernel, prefix): (IpAddr, IpAddr, u8) = if v6 {
        (LOCAL6.into(), KERNEL6.into(), 64)
    } else {
        (LOCAL.into(), KERNEL.into(), 24)
    };
    // The inner MTU: the underlay's 1500 less VXLAN's 50 (IPv4) or 70 (IPv6).
    let mtu: u32 = if v6 { 1430 } else { 1450 };
    for ns in [&sw, &kv] {
        // The kernel VTEP keeps IPv6 for an IPv6 underlay (no router or DAD chatter
        // matters: vswitch answers neighbour solicitations for its own address).
        if v6 && ns.name() == kv.name() {
            continue;
        }
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
            .unwrap();
    }
    // The VM behind vswitch, and the underlay.
    vm(&sw, "vm0", &vmns, VM_MAC, &format!("{VM_IP}/24"), mtu);
    veth_pair(&sw, "ul0", &kv, "ul0").unwrap();
    vswitch_tests::netns::fastpath_napi(&kv, "ul0").unwrap();
    // The kernel VTEP. With its TX checksum offload on (veth's default) the outer UDP
    // checksum of what it sends is partial (see `kernel_vtep_with_tx_offload`).
    kv.ip(&[
        "addr",
        "add",
        &format!("{kernel}/{prefix}"),
        "dev",
        "ul0",
        "nodad",
    ])
    .unwrap();
    if !kernel_tx_offload {
        kv.ethtool(&["-K", "ul0", "tx", "off"]).unwrap();
    }
    kv.ip(&[
        "link",
        "add",
        "vxlan0",
        "type",
        "vxlan",
        "id",
        &VNI.to_string(),
        "dstport",
        "4789",
        "local",
        &kernel.to_string(),
        "remote",
        &local.to_string(),
        "dev",
        "ul0",
    ])
    .unwrap();
    kv.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
    kv.ip(&["link", "set", "vxlan0", "master", "br0"]).unwrap();
    // The host behind the kernel's bridge.
    veth_pair(&host, "eth0", &kv, "h0").unwrap();
    host.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    host.ip(&[
        "link",
        "set",
        "eth0",
        "address",
        HOST_MAC,
        "mtu",
        &mtu.to_string(),
    ])
    .unwrap();
    host.ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", "eth0"])
        .unwrap();
    host.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
    kv.ip(&[
        "link",
        "set",
        "h0",
        "mtu",
        &mtu.to_string(),
        "master",
        "br0",
    ])
    .unwrap();
    for d in ["vxlan0", "h0", "br0"] {
        kv.ip(&["link", "set", d, "up"]).unwrap();
    }
    assert_eq!(kv.mtu("vxlan0").unwrap(), mtu, "the kernel's VXLAN MTU");
    let sw_mac = sw.mac("ul0").unwrap();
    let kv_mac = kv.mac("ul0").unwrap();

    let dir = TempDir::new(sw.name());
    let core = *cores().last().unwrap();
    let socket = Vswitch::socket_path(&dir.0, "sw");
    let vs = Vswitch::start(
        &sw,
        &dir.0,
        "sw",
        &config(&socket, local, prefix, kernel),
        core,
    );
    eprintln!("{}", vs.log());

    // Capture what vswitch sends to the kernel VTEP (only incoming frames: our socket
    // ignores what ul0 itself sends).
    let cap = RawSocket::open(&kv, "ul0").unwrap();

    // Ping both ways.
    let p_vm = Pinger::open(&vmns, 0x5001).unwrap();
    let p_host = Pinger::open(&host, 0x5002).unwrap();
    netrun::warm_up(&p_vm, HOST_IP);
    let ok = pings(&p_vm, HOST_IP, 10);
    assert!(
        ok >= 8,
        "vm → host (kernel VXLAN): {ok}/10 answered\n{}\n{}",
        vs.log(),
        vs.ctl_text(&["stats"])
    );
    let ok = pings(&p_host, VM_IP, 10);
    assert!(
        ok >= 8,
        "host → vm (kernel VXLAN): {ok}/10 answered\n{}\n{}",
        vs.log(),
        vs.ctl_text(&["stats"])
    );

    // A frame vswitch sent, field by field.
    let mut why = Vec::new();
    let frame = cap
        .recv_matching(Duration::from_secs(2), |rx| {
            let r = if v6 {
                check_vxlan6_frame(&rx.data)
            } else {
                check_vxlan_frame(&rx.data, sw_mac, kv_mac)
            };
            match r {
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
        "no VXLAN frame with an ICMP packet from the VM captured on the kernel's ul0 (skipped: {why:?})"
    );
    drop(cap);

    // What each side learned: the kernel's VXLAN FDB has the VM's MAC behind vswitch's
    // VTEP, vswitch has the host's MAC behind the kernel's.
    let fdb = kv.bridge(&["fdb", "show", "dev", "vxlan0"]).unwrap();
    assert!(
        fdb.lines()
            .any(|l| l.starts_with(VM_MAC) && l.contains(&format!("dst {local}"))),
        "kernel vxlan0 fdb: {fdb}"
    );
    let Reply::Fdb(vfdb) = vs.ctl_json(&["fdb", "show"]) else {
        panic!("fdb show: not an fdb reply")
    };
    let row = |mac: &str| vfdb.entries.iter().find(|e| e.mac == mac).cloned();
    let h = row(HOST_MAC).expect("vswitch did not learn the host's MAC");
    assert_eq!(h.network, "t");
    assert_eq!(h.vtep, Some(kernel), "host's MAC behind the kernel VTEP");
    let v = row(VM_MAC).expect("vswitch did not learn the VM's MAC");
    assert_eq!(v.port.as_deref(), Some("vm0"));
    eprintln!("{}", vs.ctl_text(&["fdb", "show"]));

    // TCP, a few MiB each way.
    let t = tcp_transfer(&host, SocketAddrV4::new(HOST_IP, 5001), &vmns, MIB4);
    eprintln!("TCP vm → host: 4 MiB in {t:?}");
    let t = tcp_transfer(&vmns, SocketAddrV4::new(VM_IP, 5002), &host, MIB4);
    eprintln!("TCP host → vm: 4 MiB in {t:?}");

    let stats = vs.stats();
    let uplink = stats.ports.iter().find(|p| p.name == "uplink").unwrap();
    assert!(
        uplink.rx_frames > 1000 && uplink.tx_frames > 1000,
        "uplink counters: {uplink:?}"
    );
    eprintln!("{}", vs.ctl_text(&["stats"]));
    // Nothing was refused by the kernel as a bad UDP checksum.
    assert_eq!(kv.snmp("Udp", "InCsumErrors").unwrap(), 0);
    if v6 {
        assert_eq!(kv.snmp6("Udp6InCsumErrors").unwrap(), 0);
        // With the fast path on, the IPv6 tunnel was taken in the kernel both ways.
        if vswitch_tests::netns::fastpath_args() == ["--fastpath"] {
            let fp = stats.fastpath.clone().expect("fast path counters");
            assert!(
                fp.get("encap_ipv6") > 0 && fp.get("decap_ipv6") > 0,
                "VXLAN over IPv6 did not take the fast path: {fp:?}"
            );
            assert_eq!(
                fp.get("punt_no_dev"),
                0,
                "egress missing from the devmap: {fp:?}"
            );
        }
    }
    vs.stop();
    for p in ["vm0", "ul0"] {
        let link = sw.ip(&["-d", "link", "show", "dev", p]).unwrap();
        assert!(!link.contains("xdp"), "XDP program left on {p}: {link}");
    }
}
