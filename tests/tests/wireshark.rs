//! Wireshark cross-check: frames produced by `encap` (VXLAN and GRE encapsulation, VLAN
//! push / QinQ / translate / pop-with-padding, the ARP and ND frames of `encap::neigh`)
//! are written to a classic libpcap file and dissected by `tshark` with checksum validation on. Every frame must decode to the
//! fields we meant to write, every checksum Wireshark can validate must be good, and
//! Wireshark must report no malformed packet and no warning or error expert item.
//!
//! `tshark` is a hard requirement (`scripts/setup.sh` installs the Debian package): when it
//! is missing this test fails, it does not skip.

// Helper functions (not only `#[test]` bodies) unwrap and panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use encap::arp::{self, ArpRepr, Operation};
use encap::ethernet::{self, EthernetRepr};
use encap::ipv4::{self, Ipv4Repr};
use encap::neigh;
use encap::tunnel::{self, GreOptions, GreTemplate, VxlanTemplate};
use encap::udp::{self, UdpRepr};
use encap::vlan::{self, Tpid, VlanTag};
use encap::{EtherType, Frame, GreKey, MacAddr, Pcp, VlanId, Vni};

// ---------------------------------------------------------------------------------------
// pcap and tshark
// ---------------------------------------------------------------------------------------

/// Writes `frames` as a classic libpcap file (microsecond timestamps, LINKTYPE_ETHERNET).
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes()); // magic: little-endian, µs
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).unwrap();
        out.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes()); // ts_sec
        out.extend_from_slice(&0u32.to_le_bytes()); // ts_usec
        out.extend_from_slice(&len.to_le_bytes()); // captured length
        out.extend_from_slice(&len.to_le_bytes()); // original length
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

/// A scratch directory under Cargo's per-target temporary directory.
fn scratch_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wireshark");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs tshark with an empty personal configuration (so that a user's preferences cannot
/// change the dissection) and returns its standard output.
fn tshark(args: &[&str]) -> String {
    let conf = scratch_dir().join("empty-config");
    std::fs::create_dir_all(&conf).unwrap();
    let out = Command::new("tshark")
        .args(args)
        .env("WIRESHARK_CONFIG_DIR", &conf)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `tshark` ({e}). It is required by this test: run scripts/setup.sh \
                 or `apt-get install tshark`"
            )
        });
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "tshark {args:?} failed ({}):\n{}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Preferences that turn on the checksum validation Wireshark leaves off by default (the
/// GRE checksum is always validated), and a fixed decoding of the tenant UDP port 5000 as
/// plain data, so that no heuristic dissector guesses a protocol in the test payloads.
const DISSECT_OPTS: [&str; 6] = [
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-d",
    "udp.port==5000,data",
];

/// The fields read for every frame (each value is all occurrences, comma-separated,
/// outermost first).
const FIELDS: &[&str] = &[
    "frame.number",
    "frame.len",
    "eth.dst",
    "eth.src",
    "eth.type",
    "eth.padding",
    "vlan.priority",
    "vlan.dei",
    "vlan.id",
    "vlan.etype",
    "ieee8021ad.priority",
    "ieee8021ad.dei",
    "ieee8021ad.id",
    "ip.version",
    "ip.len",
    "ip.id",
    "ip.flags.df",
    "ip.ttl",
    "ip.proto",
    "ip.checksum.status",
    "ipv6.plen",
    "ipv6.nxt",
    "ipv6.hlim",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "udp.checksum.status",
    "vxlan.flags",
    "vxlan.flag_i",
    "vxlan.vni",
    "gre.flags_and_version",
    "gre.flags.checksum",
    "gre.flags.key",
    "gre.flags.sequence_number",
    "gre.flags.version",
    "gre.proto",
    "gre.checksum.status",
    "gre.key",
    "gre.sequence_number",
    "arp.opcode",
    "arp.src.hw_mac",
    "arp.dst.proto_ipv4",
    "arp.src.proto_ipv4",
    "arp.dst.hw_mac",
    "arp.isgratuitous",
    "icmpv6.type",
    "icmpv6.code",
    "icmpv6.checksum.status",
    "icmpv6.nd.ns.target_address",
    "icmpv6.nd.na.target_address",
    "icmpv6.nd.na.flag.s",
    "icmpv6.nd.na.flag.o",
    "icmpv6.opt.type",
    "icmpv6.opt.linkaddr",
    "_ws.malformed",
    "_ws.expert.severity",
    "_ws.expert.message",
];

/// Expert info severities (epan/proto.h: PI_CHAT, PI_NOTE, PI_WARN, PI_ERROR).
const PI_WARN: u64 = 0x0060_0000;

/// Dissects the file and returns, per frame, field name → value.
fn dissect(pcap: &Path) -> Vec<BTreeMap<&'static str, String>> {
    let mut args = vec!["-n", "-r", pcap.to_str().unwrap()];
    args.extend_from_slice(&DISSECT_OPTS);
    args.extend_from_slice(&[
        "-T",
        "fields",
        "-E",
        "header=n",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-E",
        "quote=n",
    ]);
    for f in FIELDS {
        args.extend_from_slice(&["-e", f]);
    }
    tshark(&args)
        .lines()
        .map(|line| {
            let vals: Vec<&str> = line.split('\t').collect();
            assert_eq!(vals.len(), FIELDS.len(), "tshark line: {line}");
            FIELDS
                .iter()
                .copied()
                .zip(vals.into_iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

const OUTER_L: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0x01]);
const OUTER_R: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0x02]);

fn framed(bytes: &[u8], head: usize, tail: usize) -> Frame<Vec<u8>> {
    let mut buf = vec![0u8; head + bytes.len() + tail];
    buf[head..head + bytes.len()].copy_from_slice(bytes);
    Frame::new(buf, head, bytes.len()).unwrap()
}

fn inner_macs(n: u8) -> (MacAddr, MacAddr) {
    (
        MacAddr([0xfa, 0x16, 0x3e, 0, 0x01, n]),
        MacAddr([0xfa, 0x16, 0x3e, 0, 0x02, n]),
    )
}

/// A tenant frame: Ethernet + IPv4 + UDP 40000 → 5000 with a valid checksum + payload.
fn inner_udp(n: u8, payload_len: usize) -> Vec<u8> {
    let (src, dst) = inner_macs(n);
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8 ^ n).collect();
    let mut ip = Ipv4Repr::new(
        Ipv4Addr::new(10, 0, 0, n),
        Ipv4Addr::new(10, 0, 1, n),
        ipv4::protocol::UDP,
        (udp::HEADER_LEN + payload.len()) as u16,
    );
    ip.ident = u16::from(n) << 8 | 0x42;
    let mut b = vec![0u8; 14 + 20 + 8 + payload.len()];
    EthernetRepr {
        dst,
        src,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut b[..]));
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut b[14..]));
    b[42..].copy_from_slice(&payload);
    let mut u = udp::Packet::new_unchecked(&mut b[34..]);
    UdpRepr {
        src_port: 40000,
        dst_port: 5000,
        payload_len: payload.len() as u16,
    }
    .emit(&mut u);
    u.fill_checksum_v4(ip.src, ip.dst);
    b
}

/// A tenant ARP request (42 bytes: no padding of its own).
fn inner_arp(n: u8) -> Vec<u8> {
    let (src, _) = inner_macs(n);
    let mut b = vec![0u8; 14 + arp::PACKET_LEN];
    EthernetRepr {
        dst: MacAddr::BROADCAST,
        src,
        ethertype: EtherType::Arp,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut b[..]));
    ArpRepr {
        operation: Operation::Request,
        sender_mac: src,
        sender_ip: Ipv4Addr::new(10, 0, 0, n),
        target_mac: MacAddr::ZERO,
        target_ip: Ipv4Addr::new(10, 0, 0, 254),
    }
    .emit(&mut arp::Packet::new_unchecked(&mut b[14..]));
    b
}

fn tag(tpid: Tpid, pcp: u8, dei: bool, vid: Option<u16>) -> VlanTag {
    VlanTag {
        tpid,
        pcp: Pcp::try_new(pcp).unwrap(),
        dei,
        vid: vid.map(|v| VlanId::try_new(v).unwrap()),
    }
}

fn v4_params() -> tunnel::OuterParams {
    tunnel::v4_params(
        OUTER_L,
        OUTER_R,
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 0, 2),
    )
}

fn v6_params() -> tunnel::OuterParams {
    tunnel::v6_params(
        OUTER_L,
        OUTER_R,
        "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        "2001:db8::2".parse::<Ipv6Addr>().unwrap(),
    )
}

/// One frame and the field values Wireshark must show for it. Fields not named are not
/// checked, except that every frame must be free of malformed and warning/error items;
/// an empty expected value means "absent".
#[derive(Debug)]
struct Case {
    name: String,
    frame: Vec<u8>,
    expect: Vec<(&'static str, String)>,
}

impl Case {
    fn new(name: impl Into<String>, frame: Vec<u8>) -> Self {
        let frame_len = frame.len().to_string();
        Case {
            name: name.into(),
            frame,
            expect: vec![("frame.len", frame_len)],
        }
    }

    fn expect(mut self, field: &'static str, value: impl Into<String>) -> Self {
        assert!(FIELDS.contains(&field), "{field} is not in FIELDS");
        self.expect.push((field, value.into()));
        self
    }

    /// Fields that are the same for a frame that is neither tagged nor GRE/VXLAN.
    fn none_of(mut self, fields: &[&'static str]) -> Self {
        for f in fields {
            self = self.expect(f, "");
        }
        self
    }
}

const VLAN_FIELDS: &[&str] = &["vlan.id", "vlan.priority", "vlan.dei", "vlan.etype"];
const QINQ_FIELDS: &[&str] = &["ieee8021ad.id", "ieee8021ad.priority", "ieee8021ad.dei"];
const GRE_FIELDS: &[&str] = &["gre.key", "gre.proto", "gre.flags_and_version"];
const VXLAN_FIELDS: &[&str] = &["vxlan.vni", "vxlan.flags"];

fn mac(m: MacAddr) -> String {
    m.to_string()
}

fn vxlan_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut n = 1u8;
    // VXLAN over IPv4 (DF set: ID 0), several VNIs.
    for vni in [1u32, 5010, 0x00ab_cdef, 0x00ff_ffff] {
        let t = VxlanTemplate::new(&v4_params(), 4789).unwrap();
        let inner = inner_udp(n, 18);
        let mut f = framed(&inner, 64, 0);
        t.encap(
            &mut f,
            Vni::try_new(vni).unwrap(),
            tunnel::flow_hash(&inner),
            0x9999,
        )
        .unwrap();
        let sport = tunnel::source_port(tunnel::flow_hash(&inner));
        let (isrc, idst) = inner_macs(n);
        cases.push(
            Case::new(format!("vxlan/ipv4 vni {vni}"), f.data().to_vec())
                .expect("eth.src", format!("{},{}", mac(OUTER_L), mac(isrc)))
                .expect("eth.dst", format!("{},{}", mac(OUTER_R), mac(idst)))
                .expect("eth.type", "0x0800,0x0800")
                .expect("ip.version", "4,4")
                .expect(
                    "ip.len",
                    format!("{},{}", 50 - 14 + inner.len(), inner.len() - 14),
                )
                .expect("ip.id", format!("0x0000,0x{:02x}42", n))
                .expect("ip.flags.df", "1,1")
                .expect("ip.ttl", "64,64")
                .expect("ip.proto", "17,17")
                .expect("ip.checksum.status", "1,1")
                .expect("udp.srcport", format!("{sport},40000"))
                .expect("udp.dstport", "4789,5000")
                .expect("udp.length", format!("{},{}", 16 + inner.len(), 8 + 18))
                // Outer: no checksum over IPv4 (RFC 7348); inner: good.
                .expect("udp.checksum.status", "3,1")
                .expect("vxlan.flags", "0x0800")
                .expect("vxlan.flag_i", "1")
                .expect("vxlan.vni", vni.to_string())
                .none_of(VLAN_FIELDS)
                .none_of(GRE_FIELDS),
        );
        n += 1;
    }
    // DF clear: the caller's IP ID is used and the checksum patched accordingly.
    for ip_id in [1u16, 0x1234, 0xfffe, 0xffff] {
        let mut p = v4_params();
        p.df = false;
        p.ttl = 17;
        p.tos = 0xb8;
        let t = VxlanTemplate::new(&p, 4789).unwrap();
        let inner = inner_arp(n);
        let mut f = framed(&inner, 64, 0);
        t.encap(&mut f, Vni::try_new(100).unwrap(), 7, ip_id)
            .unwrap();
        let (isrc, _) = inner_macs(n);
        cases.push(
            Case::new(
                format!("vxlan/ipv4 DF clear id {ip_id:#06x}"),
                f.data().to_vec(),
            )
            .expect("eth.src", format!("{},{}", mac(OUTER_L), mac(isrc)))
            .expect(
                "eth.dst",
                format!("{},{}", mac(OUTER_R), mac(MacAddr::BROADCAST)),
            )
            .expect("eth.type", "0x0800,0x0806")
            .expect("ip.id", format!("{ip_id:#06x}"))
            .expect("ip.flags.df", "0")
            .expect("ip.ttl", "17")
            .expect("ip.checksum.status", "1")
            .expect("udp.srcport", tunnel::source_port(7).to_string())
            .expect("udp.checksum.status", "3")
            .expect("vxlan.vni", "100")
            .expect("arp.opcode", "1")
            .expect("arp.src.hw_mac", mac(isrc))
            .expect("arp.dst.proto_ipv4", "10.0.0.254"),
        );
        n += 1;
    }
    // VXLAN over IPv6: the UDP checksum is mandatory and must be good.
    for vni in [0u32, 42, 0x0012_3456, 0x00ff_ffff] {
        let mut p = v6_params();
        p.ttl = 255;
        let t = VxlanTemplate::new(&p, 4789).unwrap();
        let inner = inner_udp(n, 100);
        let mut f = framed(&inner, 80, 0);
        t.encap(
            &mut f,
            Vni::try_new(vni).unwrap(),
            tunnel::flow_hash(&inner),
            0,
        )
        .unwrap();
        let (isrc, idst) = inner_macs(n);
        cases.push(
            Case::new(format!("vxlan/ipv6 vni {vni}"), f.data().to_vec())
                .expect("eth.src", format!("{},{}", mac(OUTER_L), mac(isrc)))
                .expect("eth.dst", format!("{},{}", mac(OUTER_R), mac(idst)))
                .expect("eth.type", "0x86dd,0x0800")
                .expect("ipv6.plen", (16 + inner.len()).to_string())
                .expect("ipv6.nxt", "17")
                .expect("ipv6.hlim", "255")
                .expect("ip.checksum.status", "1")
                .expect(
                    "udp.srcport",
                    format!("{},40000", tunnel::source_port(tunnel::flow_hash(&inner))),
                )
                .expect("udp.dstport", "4789,5000")
                .expect("udp.checksum.status", "1,1")
                .expect("vxlan.flags", "0x0800")
                .expect("vxlan.vni", vni.to_string())
                .none_of(VLAN_FIELDS),
        );
        n += 1;
    }
    // VXLAN over IPv6 carrying an 802.1Q-tagged tenant frame.
    let t = VxlanTemplate::new(&v6_params(), 4789).unwrap();
    let mut inner = framed(&inner_udp(n, 30), 4, 0);
    vlan::push(&mut inner, tag(Tpid::Dot1Q, 5, false, Some(300))).unwrap();
    let inner = inner.data().to_vec();
    let mut f = framed(&inner, 80, 0);
    t.encap(&mut f, Vni::try_new(9000).unwrap(), 1, 0).unwrap();
    let (isrc, _) = inner_macs(n);
    cases.push(
        Case::new("vxlan/ipv6 tagged inner", f.data().to_vec())
            .expect("eth.src", format!("{},{}", mac(OUTER_L), mac(isrc)))
            .expect("eth.type", "0x86dd,0x8100")
            .expect("vlan.id", "300")
            .expect("vlan.priority", "5")
            .expect("vlan.etype", "0x0800")
            .expect("ip.checksum.status", "1")
            .expect("udp.checksum.status", "1,1")
            .expect("vxlan.vni", "9000"),
    );
    cases
}

fn gre_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let variants = [
        (false, false, false, 0x0000_0001u32, 0u32),
        (false, false, true, 0xdead_beef, 7),
        (false, true, false, 0x0102_0304, 0),
        (false, true, true, 0xffff_ffff, 0xffff_ffff),
        (true, false, false, 4242, 0),
        (true, true, true, 0x00ab_cdef, 123_456),
        (true, false, true, 0, 1),
    ];
    for (n, (v6, checksum, seq, key, seq_no)) in (40u8..).zip(variants) {
        let params = if v6 { v6_params() } else { v4_params() };
        let opts = GreOptions { checksum, seq };
        let t = GreTemplate::new(&params, opts).unwrap();
        let inner = inner_udp(n, 25 + usize::from(n));
        let mut f = framed(&inner, 80, 0);
        t.encap(&mut f, GreKey::new(key), seq_no, 0).unwrap();
        let (isrc, idst) = inner_macs(n);
        let flags = 0x2000 | if checksum { 0x8000 } else { 0 } | if seq { 0x1000 } else { 0 };
        let fam = if v6 { "ipv6" } else { "ipv4" };
        let mut c = Case::new(
            format!("gre/{fam} key {key:#x} csum {checksum} seq {seq}"),
            f.data().to_vec(),
        )
        .expect("eth.src", format!("{},{}", mac(OUTER_L), mac(isrc)))
        .expect("eth.dst", format!("{},{}", mac(OUTER_R), mac(idst)))
        .expect("gre.flags_and_version", format!("{flags:#06x}"))
        .expect("gre.flags.checksum", if checksum { "1" } else { "0" })
        .expect("gre.flags.key", "1")
        .expect("gre.flags.sequence_number", if seq { "1" } else { "0" })
        .expect("gre.flags.version", "0")
        .expect("gre.proto", "0x6558")
        .expect("gre.key", format!("{key:#010x}"))
        .expect(
            "gre.sequence_number",
            if seq {
                seq_no.to_string()
            } else {
                String::new()
            },
        )
        // Wireshark's GRE checksum status: 1 = good, absent when no checksum is sent.
        .expect("gre.checksum.status", if checksum { "1" } else { "" })
        .expect("udp.checksum.status", "1")
        .none_of(VXLAN_FIELDS)
        .none_of(VLAN_FIELDS);
        c = if v6 {
            c.expect("eth.type", "0x86dd,0x0800")
                .expect("ipv6.nxt", "47")
                .expect("ipv6.plen", (t.overhead() - 54 + inner.len()).to_string())
                .expect("ip.checksum.status", "1")
        } else {
            c.expect("eth.type", "0x0800,0x0800")
                .expect("ip.proto", "47,17")
                .expect("ip.checksum.status", "1,1")
        };
        cases.push(c);
    }
    cases
}

fn vlan_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut n = 80u8;
    // 802.1Q push with PCP and DEI.
    let base = inner_udp(n, 40);
    let mut f = framed(&base, 8, 0);
    vlan::push(&mut f, tag(Tpid::Dot1Q, 5, true, Some(100))).unwrap();
    let (src, dst) = inner_macs(n);
    cases.push(
        Case::new("vlan push 802.1Q", f.data().to_vec())
            .expect("eth.src", mac(src))
            .expect("eth.dst", mac(dst))
            .expect("eth.type", "0x8100")
            .expect("vlan.id", "100")
            .expect("vlan.priority", "5")
            .expect("vlan.dei", "1")
            .expect("vlan.etype", "0x0800")
            .expect("ip.checksum.status", "1")
            .expect("udp.checksum.status", "1")
            .none_of(QINQ_FIELDS),
    );
    n += 1;
    // Priority tag: VID 0.
    let base = inner_arp(n);
    let mut f = framed(&base, 8, 0);
    vlan::push(&mut f, tag(Tpid::Dot1Q, 3, false, None)).unwrap();
    f.pad_to(60).unwrap_err(); // no tailroom: it stays a 46-byte frame, as sent by a host
    cases.push(
        Case::new("vlan push priority tag", f.data().to_vec())
            .expect("vlan.id", "0")
            .expect("vlan.priority", "3")
            .expect("vlan.dei", "0")
            .expect("vlan.etype", "0x0806")
            .expect("arp.opcode", "1"),
    );
    n += 1;
    // QinQ: C-tag, then an 802.1ad S-tag pushed on top.
    let base = inner_udp(n, 20);
    let mut f = framed(&base, 8, 0);
    vlan::push(&mut f, tag(Tpid::Dot1Q, 2, false, Some(10))).unwrap();
    vlan::push(&mut f, tag(Tpid::Dot1Ad, 6, true, Some(4094))).unwrap();
    let (src, dst) = inner_macs(n);
    cases.push(
        Case::new("qinq push", f.data().to_vec())
            .expect("eth.src", mac(src))
            .expect("eth.dst", mac(dst))
            .expect("eth.type", "0x88a8")
            .expect("ieee8021ad.id", "4094")
            .expect("ieee8021ad.priority", "6")
            .expect("ieee8021ad.dei", "1")
            .expect("vlan.id", "10")
            .expect("vlan.priority", "2")
            .expect("vlan.dei", "0")
            .expect("vlan.etype", "0x0800")
            .expect("ip.checksum.status", "1")
            .expect("udp.checksum.status", "1"),
    );
    n += 1;
    // Translate keeps PCP and DEI.
    let base = inner_udp(n, 20);
    let mut f = framed(&base, 8, 0);
    vlan::push(&mut f, tag(Tpid::Dot1Q, 4, true, Some(100))).unwrap();
    vlan::translate(&mut f, VlanId::try_new(2001).unwrap()).unwrap();
    cases.push(
        Case::new("vlan translate", f.data().to_vec())
            .expect("vlan.id", "2001")
            .expect("vlan.priority", "4")
            .expect("vlan.dei", "1")
            .expect("vlan.etype", "0x0800")
            .expect("udp.checksum.status", "1"),
    );
    n += 1;
    // Pop the S-tag of a QinQ frame: the C-tagged frame remains.
    let base = inner_udp(n, 30);
    let mut f = framed(&base, 8, 8);
    vlan::push(&mut f, tag(Tpid::Dot1Q, 1, false, Some(77))).unwrap();
    vlan::push(&mut f, tag(Tpid::Dot1Ad, 0, false, Some(88))).unwrap();
    vlan::pop(&mut f).unwrap();
    cases.push(
        Case::new("qinq pop outer", f.data().to_vec())
            .expect("eth.type", "0x8100")
            .expect("vlan.id", "77")
            .expect("vlan.priority", "1")
            .expect("udp.checksum.status", "1")
            .none_of(QINQ_FIELDS),
    );
    n += 1;
    // Pop that leaves a runt: zero-padded to 60 bytes. ARP (42 bytes untagged).
    let base = inner_arp(n);
    let mut f = framed(&base, 4, 32);
    vlan::push(&mut f, tag(Tpid::Dot1Q, 0, false, Some(5))).unwrap();
    vlan::pop(&mut f).unwrap();
    assert_eq!(f.len(), 60);
    let (src, _) = inner_macs(n);
    cases.push(
        Case::new("pop then padded (ARP)", f.data().to_vec())
            .expect("eth.src", mac(src))
            .expect("eth.type", "0x0806")
            .expect("eth.padding", "00".repeat(60 - 42))
            .expect("arp.opcode", "1")
            .expect("arp.src.hw_mac", mac(src))
            .none_of(VLAN_FIELDS),
    );
    n += 1;
    // Pop that leaves a runt: IPv4/UDP of 44 bytes, padded to 60.
    let base = inner_udp(n, 2);
    assert_eq!(base.len(), 44);
    let mut f = framed(&base, 4, 32);
    vlan::push(&mut f, tag(Tpid::Dot1Q, 7, true, Some(4094))).unwrap();
    vlan::pop(&mut f).unwrap();
    assert_eq!(f.len(), 60);
    cases.push(
        Case::new("pop then padded (IPv4/UDP)", f.data().to_vec())
            .expect("eth.type", "0x0800")
            .expect("eth.padding", "00".repeat(60 - 44))
            .expect("ip.len", "30")
            .expect("ip.checksum.status", "1")
            .expect("udp.length", "10")
            .expect("udp.checksum.status", "1")
            .none_of(VLAN_FIELDS),
    );
    cases
}

/// Checksum corner cases: a VXLAN/IPv6 UDP checksum that computes to zero (sent as
/// 0xffff) and a GRE checksum whose value is 0x0000 (GRE has no such substitution). The
/// inner source MAC is varied until the case occurs (MACs are not covered by the inner
/// checksums, so they shift the outer sum freely).
fn checksum_corner_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let n = 150u8;
    let base = inner_udp(n, 33);
    let with_mac = |w: u16| {
        let mut inner = base.clone();
        inner[10..12].copy_from_slice(&w.to_be_bytes());
        inner
    };
    let t = VxlanTemplate::new(&v6_params(), 4789).unwrap();
    let vxlan = (0..=0xffffu16).find_map(|w| {
        let inner = with_mac(w);
        let mut f = framed(&inner, 80, 0);
        t.encap(&mut f, Vni::try_new(77).unwrap(), 5, 0).unwrap();
        (f.data()[60..62] == [0xff, 0xff]).then(|| (inner, f.data().to_vec()))
    });
    let (inner, frame) = vxlan.expect("some inner MAC gives a zero UDP checksum");
    let isrc = MacAddr::try_from_slice(&inner[6..]).unwrap();
    cases.push(
        Case::new("vxlan/ipv6 udp checksum 0xffff", frame)
            .expect("eth.src", format!("{},{}", mac(OUTER_L), mac(isrc)))
            .expect("vxlan.vni", "77")
            .expect("udp.checksum.status", "1,1"),
    );
    for v6 in [false, true] {
        let params = if v6 { v6_params() } else { v4_params() };
        let opts = GreOptions {
            checksum: true,
            seq: true,
        };
        let t = GreTemplate::new(&params, opts).unwrap();
        let at = t.overhead() - 16 + 4; // GRE checksum field
        let gre = (0..=0xffffu16).find_map(|w| {
            let inner = with_mac(w);
            let mut f = framed(&inner, 80, 0);
            t.encap(&mut f, GreKey::new(0xc0ffee), 99, 0).unwrap();
            (f.data()[at..at + 2] == [0, 0]).then(|| (inner, f.data().to_vec()))
        });
        let (inner, frame) = gre.expect("some inner MAC gives a zero GRE checksum");
        let isrc = MacAddr::try_from_slice(&inner[6..]).unwrap();
        cases.push(
            Case::new(format!("gre v6 {v6} checksum 0x0000"), frame)
                .expect("eth.src", format!("{},{}", mac(OUTER_L), mac(isrc)))
                .expect("gre.key", "0x00c0ffee")
                .expect("gre.sequence_number", "99")
                .expect("gre.checksum.status", "1"),
        );
    }
    cases
}

/// A small deterministic PRNG (xorshift64*), so the random batch is the same every run.
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

    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// Many tunnel frames with random parameters and inner lengths (odd and even, up to the
/// MTU), to exercise the checksums Wireshark recomputes.
fn random_cases() -> Vec<Case> {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut cases = Vec::new();
    for i in 0..120u32 {
        let n = (i % 200) as u8;
        let v6 = i % 2 == 1;
        let mut p = if v6 { v6_params() } else { v4_params() };
        p.ttl = 1 + rng.below(255) as u8;
        p.tos = rng.below(256) as u8;
        p.df = rng.bool();
        let ip_id = rng.below(0x1_0000) as u16;
        let inner = inner_udp(n, rng.below(1380) as usize);
        let (isrc, idst) = inner_macs(n);
        let mut f = framed(&inner, 80, 0);
        let fam = if v6 { "ipv6" } else { "ipv4" };
        let mut c = if i % 4 < 2 {
            let vni = rng.below(1 << 24) as u32;
            let t = VxlanTemplate::new(&p, 4789).unwrap();
            let hash = rng.next() as u32;
            t.encap(&mut f, Vni::try_new(vni).unwrap(), hash, ip_id)
                .unwrap();
            Case::new(format!("random vxlan/{fam} #{i}"), f.data().to_vec())
                .expect("vxlan.vni", vni.to_string())
                .expect(
                    "udp.srcport",
                    format!("{},40000", tunnel::source_port(hash)),
                )
                .expect("udp.checksum.status", if v6 { "1,1" } else { "3,1" })
        } else {
            let opts = GreOptions {
                checksum: rng.bool(),
                seq: rng.bool(),
            };
            let (key, seq) = (rng.next() as u32, rng.next() as u32);
            let t = GreTemplate::new(&p, opts).unwrap();
            t.encap(&mut f, GreKey::new(key), seq, ip_id).unwrap();
            Case::new(format!("random gre/{fam} #{i} {opts:?}"), f.data().to_vec())
                .expect("gre.key", format!("{key:#010x}"))
                .expect(
                    "gre.sequence_number",
                    if opts.seq {
                        seq.to_string()
                    } else {
                        String::new()
                    },
                )
                .expect("gre.checksum.status", if opts.checksum { "1" } else { "" })
                .expect("udp.checksum.status", "1")
        };
        c = c
            .expect("eth.src", format!("{},{}", mac(OUTER_L), mac(isrc)))
            .expect("eth.dst", format!("{},{}", mac(OUTER_R), mac(idst)));
        c = if v6 {
            c.expect("ipv6.hlim", p.ttl.to_string())
                .expect("ip.checksum.status", "1")
        } else {
            let id = if p.df { 0 } else { ip_id };
            c.expect("ip.ttl", format!("{},64", p.ttl))
                .expect("ip.id", format!("{id:#06x},0x{n:02x}42"))
                .expect("ip.flags.df", format!("{},1", u8::from(p.df)))
                .expect("ip.checksum.status", "1,1")
        };
        cases.push(c);
    }
    cases
}

/// Underlay neighbour resolution and the l2population ARP responder: one frame from each
/// builder of `encap::neigh`. Addresses are distinct from every other case so that
/// Wireshark's duplicate-address detection (a warning) sees one MAC per IP in the file.
fn neigh_cases() -> Vec<Case> {
    const OUR: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0a, 0x01]);
    const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0a, 0x02]);
    let our4 = Ipv4Addr::new(198, 51, 100, 1);
    let peer4 = Ipv4Addr::new(198, 51, 100, 2);
    let our6: Ipv6Addr = "2001:db8:a::1".parse().unwrap();
    let peer6: Ipv6Addr = "2001:db8:a::12:3456".parse().unwrap();
    let mut cases = Vec::new();
    let build = |f: &dyn Fn(&mut [u8]) -> Result<usize, encap::Error>| {
        let mut b = vec![0u8; 128];
        let n = f(&mut b).unwrap();
        b.truncate(n);
        b
    };
    const ND_NONE: &[&str] = &["icmpv6.type", "ipv6.nxt"];
    cases.push(
        Case::new(
            "arp request",
            build(&|b| neigh::arp_request(b, OUR, our4, peer4)),
        )
        .expect("eth.dst", mac(MacAddr::BROADCAST))
        .expect("eth.src", mac(OUR))
        .expect("eth.type", "0x0806")
        .expect("eth.padding", "00".repeat(18))
        .expect("arp.opcode", "1")
        .expect("arp.src.hw_mac", mac(OUR))
        .expect("arp.src.proto_ipv4", our4.to_string())
        .expect("arp.dst.hw_mac", mac(MacAddr::ZERO))
        .expect("arp.dst.proto_ipv4", peer4.to_string())
        .expect("arp.isgratuitous", "")
        .none_of(ND_NONE)
        .none_of(VLAN_FIELDS),
    );
    cases.push(
        Case::new(
            "arp reply",
            build(&|b| neigh::arp_reply(b, OUR, our4, PEER, peer4)),
        )
        .expect("eth.dst", mac(PEER))
        .expect("eth.src", mac(OUR))
        .expect("arp.opcode", "2")
        .expect("arp.src.hw_mac", mac(OUR))
        .expect("arp.src.proto_ipv4", our4.to_string())
        .expect("arp.dst.hw_mac", mac(PEER))
        .expect("arp.dst.proto_ipv4", peer4.to_string())
        .none_of(ND_NONE),
    );
    cases.push(
        Case::new(
            "gratuitous arp",
            build(&|b| neigh::gratuitous_arp(b, OUR, our4)),
        )
        .expect("eth.dst", mac(MacAddr::BROADCAST))
        .expect("arp.opcode", "1")
        .expect("arp.isgratuitous", "1")
        .expect("arp.src.proto_ipv4", our4.to_string())
        .expect("arp.dst.proto_ipv4", our4.to_string()),
    );
    // The l2population responder, out of place and in place (a 42-byte request keeps its
    // length: Wireshark sees an unpadded reply).
    let vm = MacAddr([0xfa, 0x16, 0x3e, 0xaa, 0, 0x10]);
    let answer = MacAddr([0xfa, 0x16, 0x3e, 0xaa, 0, 0x20]);
    let (vm4, asked4) = (
        Ipv4Addr::new(198, 51, 100, 10),
        Ipv4Addr::new(198, 51, 100, 20),
    );
    let request = build(&|b| neigh::arp_request(b, vm, vm4, asked4));
    let responder = |c: Case| {
        c.expect("eth.dst", mac(vm))
            .expect("eth.src", mac(answer))
            .expect("eth.type", "0x0806")
            .expect("arp.opcode", "2")
            .expect("arp.src.hw_mac", mac(answer))
            .expect("arp.src.proto_ipv4", asked4.to_string())
            .expect("arp.dst.hw_mac", mac(vm))
            .expect("arp.dst.proto_ipv4", vm4.to_string())
            .expect("arp.isgratuitous", "")
    };
    cases.push(responder(Case::new(
        "arp responder",
        build(&|b| neigh::arp_responder(&request, answer, b)),
    )));
    let mut inplace = request[..42].to_vec();
    assert_eq!(neigh::arp_responder_in_place(&mut inplace, answer), Ok(42));
    cases.push(responder(Case::new("arp responder in place", inplace)).expect("eth.padding", ""));
    // IPv6 ND.
    cases.push(
        Case::new(
            "nd solicit",
            build(&|b| neigh::nd_solicit(b, OUR, our6, peer6)),
        )
        .expect("eth.dst", "33:33:ff:12:34:56")
        .expect("eth.src", mac(OUR))
        .expect("eth.type", "0x86dd")
        .expect("ipv6.nxt", "58")
        .expect("ipv6.hlim", "255")
        .expect("ipv6.plen", "32")
        .expect("icmpv6.type", "135")
        .expect("icmpv6.code", "0")
        .expect("icmpv6.checksum.status", "1")
        .expect("icmpv6.nd.ns.target_address", peer6.to_string())
        .expect("icmpv6.opt.type", "1")
        .expect("icmpv6.opt.linkaddr", mac(OUR)),
    );
    cases.push(
        Case::new(
            "nd advert solicited",
            build(&|b| neigh::nd_advert(b, OUR, our6, Some((peer6, PEER)))),
        )
        .expect("eth.dst", mac(PEER))
        .expect("eth.src", mac(OUR))
        .expect("ipv6.hlim", "255")
        .expect("icmpv6.type", "136")
        .expect("icmpv6.checksum.status", "1")
        .expect("icmpv6.nd.na.target_address", our6.to_string())
        .expect("icmpv6.nd.na.flag.s", "1")
        .expect("icmpv6.nd.na.flag.o", "1")
        .expect("icmpv6.opt.type", "2")
        .expect("icmpv6.opt.linkaddr", mac(OUR)),
    );
    cases.push(
        Case::new(
            "nd advert to all nodes (DAD)",
            build(&|b| neigh::nd_advert(b, OUR, our6, None)),
        )
        .expect("eth.dst", "33:33:00:00:00:01")
        .expect("icmpv6.type", "136")
        .expect("icmpv6.checksum.status", "1")
        .expect("icmpv6.nd.na.flag.s", "0")
        .expect("icmpv6.nd.na.flag.o", "1")
        .expect("icmpv6.opt.linkaddr", mac(OUR)),
    );
    cases
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

#[test]
fn wireshark_dissects_encap_output() {
    let mut cases = vxlan_cases();
    cases.extend(gre_cases());
    cases.extend(vlan_cases());
    cases.extend(checksum_corner_cases());
    cases.extend(random_cases());
    cases.extend(neigh_cases());
    let pcap = scratch_dir().join("encap-frames.pcap");
    let frames: Vec<Vec<u8>> = cases.iter().map(|c| c.frame.clone()).collect();
    write_pcap(&pcap, &frames);

    let rows = dissect(&pcap);
    assert_eq!(
        rows.len(),
        cases.len(),
        "tshark read a different number of frames"
    );
    let mut failures = Vec::new();
    for (i, (case, row)) in cases.iter().zip(&rows).enumerate() {
        assert_eq!(row["frame.number"], (i + 1).to_string());
        for (field, want) in &case.expect {
            let got = &row[field];
            if got != want {
                failures.push(format!(
                    "frame {} ({}): {field} = {got:?}, expected {want:?}",
                    i + 1,
                    case.name
                ));
            }
        }
        if !row["_ws.malformed"].is_empty() {
            failures.push(format!("frame {} ({}): malformed", i + 1, case.name));
        }
        let severities = &row["_ws.expert.severity"];
        for s in severities.split(',').filter(|s| !s.is_empty()) {
            let sev: u64 = s.parse().unwrap_or(u64::MAX);
            if sev >= PI_WARN {
                failures.push(format!(
                    "frame {} ({}): expert item of severity {sev:#x}: {}",
                    i + 1,
                    case.name,
                    row["_ws.expert.message"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "Wireshark disagrees with encap ({} problems; capture kept at {}):\n{}",
        failures.len(),
        pcap.display(),
        failures.join("\n")
    );

    // Wireshark's own summary of expert items: no error nor warning section at all.
    let mut args = vec!["-n", "-q", "-r", pcap.to_str().unwrap()];
    args.extend_from_slice(&DISSECT_OPTS);
    args.extend_from_slice(&["-z", "expert,warn"]);
    let summary = tshark(&args);
    assert!(
        !summary.contains("Errors (") && !summary.contains("Warns ("),
        "tshark -z expert reports problems in {}:\n{summary}",
        pcap.display()
    );
}
