//! Writes the seed corpus of every fuzz target: `corpus/<target>/<name>.bin`.
//!
//! ```text
//! cd fuzz && cargo run --example gen_seeds            # (re)write the seeds
//! cd fuzz && cargo run --example gen_seeds -- --check # fail if corpus/ differs
//! ```
//!
//! Frames are built with `encap` itself (Repr emit, VLAN push, VXLAN/GRE templates)
//! plus a few byte edits for the malformed ones; `ops` seeds are `ops::Input` values
//! encoded with `Input::encode`. Each seed is checked to do what its name says (a decap
//! seed named as accepted is accepted, ...) and is run through its harness once, so a
//! seed that trips an assertion fails here rather than in the fuzzer. Output is
//! deterministic: the same source gives the same bytes.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use encap::arp::{self, ArpRepr, Operation};
use encap::ethernet::{self, EtherType, EthernetRepr};
use encap::gre::{self, GreRepr};
use encap::ipv4::{self, protocol, Ipv4Repr};
use encap::ipv6::{self, ext, Ipv6Repr};
use encap::tunnel::{self, DecapConfig, GreOptions, GreTemplate, OuterParams, VxlanTemplate};
use encap::udp::{self, UdpRepr};
use encap::vlan::{self, Tpid, VlanTag};
use encap::vxlan::{self, VxlanRepr};
use encap::{Frame, GreKey, MacAddr, Pcp, VlanId, Vni};
use vswitch_fuzz::decap;
use vswitch_fuzz::ops::{self, Input, Op, Outer, VxlanOp};

type Seeds = BTreeMap<String, Vec<u8>>;

const VM_A: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0x00, 0x00, 0x01]);
const VM_B: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0x00, 0x00, 0x02]);
const HOST: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
const NEXT_HOP: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
const VXLAN_PORT: u16 = vxlan::DEFAULT_PORT;

fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("literal IPv6 address")
}

fn vid(v: u16) -> VlanId {
    VlanId::try_new(v).expect("literal VID")
}

fn vni(v: u32) -> Vni {
    Vni::try_new(v).expect("literal VNI")
}

// ---------------------------------------------------------------------------------
// Frame builders.

fn eth(dst: MacAddr, src: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; encap::ETH_HLEN + payload.len()];
    EthernetRepr {
        dst,
        src,
        ethertype,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut b[..]));
    b[encap::ETH_HLEN..].copy_from_slice(payload);
    b
}

fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = [0u8; arp::PACKET_LEN];
    ArpRepr {
        operation: Operation::Request,
        sender_mac: VM_A,
        sender_ip: sender,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    }
    .emit(&mut arp::Packet::new_unchecked(&mut a[..]));
    let mut f = eth(MacAddr::BROADCAST, VM_A, EtherType::Arp, &a);
    f.resize(encap::ETH_ZLEN, 0);
    f
}

/// An IPv4 packet; `tweak` edits the Repr (options, flags, ...) before it is emitted.
fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload: &[u8],
    tweak: impl FnOnce(&mut Ipv4Repr),
) -> Vec<u8> {
    let mut r = Ipv4Repr::new(src, dst, proto, payload.len() as u16);
    tweak(&mut r);
    let hl = r.buffer_len();
    let mut b = vec![0u8; hl + payload.len()];
    b[hl..].copy_from_slice(payload);
    r.emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    b
}

/// An IPv6 packet whose extension headers `ext` (already chained, the last one
/// naming `proto`) come before the payload.
fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, first: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; ipv6::HEADER_LEN + ext.len() + payload.len()];
    Ipv6Repr {
        src,
        dst,
        next_header: first,
        payload_len: (ext.len() + payload.len()) as u16,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0x12345,
    }
    .emit(&mut ipv6::Packet::new_unchecked(&mut b[..]));
    b[ipv6::HEADER_LEN..ipv6::HEADER_LEN + ext.len()].copy_from_slice(ext);
    b[ipv6::HEADER_LEN + ext.len()..].copy_from_slice(payload);
    b
}

/// An 8-byte options extension header (hop-by-hop or destination) with a PadN option.
fn opts_ext(next: u8) -> [u8; 8] {
    [next, 0, 1, 4, 0, 0, 0, 0]
}

enum UdpSum<'a> {
    None,
    V4(Ipv4Addr, Ipv4Addr),
    V6(&'a Ipv6Addr, &'a Ipv6Addr),
}

fn udp(sport: u16, dport: u16, payload: &[u8], sum: UdpSum<'_>) -> Vec<u8> {
    let mut b = vec![0u8; udp::HEADER_LEN + payload.len()];
    b[udp::HEADER_LEN..].copy_from_slice(payload);
    let mut p = udp::Packet::new_unchecked(&mut b[..]);
    UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload_len: payload.len() as u16,
    }
    .emit(&mut p);
    match sum {
        UdpSum::None => {}
        UdpSum::V4(s, d) => p.fill_checksum_v4(s, d),
        UdpSum::V6(s, d) => p.fill_checksum_v6(s, d),
    }
    b
}

/// A 20-byte TCP SYN (no options); the checksum is left zero (parse does not check it).
fn tcp_syn(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t
}

fn vxlan_hdr(v: u32) -> [u8; 8] {
    let mut h = [0u8; vxlan::HEADER_LEN];
    VxlanRepr { vni: vni(v) }.emit(&mut vxlan::Packet::new_unchecked(&mut h[..]));
    h
}

/// A VM's IPv4/UDP frame (DNS-like query), `len` bytes of payload.
fn vm_ipv4_udp(len: usize) -> Vec<u8> {
    let (s, d) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let u = udp(40000, 53, &payload, UdpSum::V4(s, d));
    eth(
        VM_B,
        VM_A,
        EtherType::Ipv4,
        &ipv4(s, d, protocol::UDP, &u, |_| {}),
    )
}

/// A VM's IPv6/UDP frame.
fn vm_ipv6_udp(len: usize) -> Vec<u8> {
    let (s, d) = (v6("fd00::1"), v6("fd00::2"));
    let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let u = udp(40000, 5353, &payload, UdpSum::V6(&s, &d));
    eth(
        VM_B,
        VM_A,
        EtherType::Ipv6,
        &ipv6(s, d, protocol::UDP, &[], &u),
    )
}

fn framed(bytes: &[u8], head: usize) -> Frame<Vec<u8>> {
    vswitch_fuzz::framed(bytes, head, 0)
}

fn push_tag(frame: &[u8], tpid: Tpid, v: u16, pcp: u8) -> Vec<u8> {
    let mut f = framed(frame, 4);
    let tag = VlanTag {
        tpid,
        pcp: Pcp::from_bits(pcp),
        dei: false,
        vid: Some(vid(v)),
    };
    vlan::push(&mut f, tag).expect("push into 4 bytes of headroom");
    f.data().to_vec()
}

fn params4() -> OuterParams {
    tunnel::v4_params(HOST, NEXT_HOP, v4(198, 18, 0, 1), v4(198, 18, 0, 2))
}

fn params6() -> OuterParams {
    tunnel::v6_params(HOST, NEXT_HOP, v6("2001:db8::1"), v6("2001:db8::2"))
}

fn vxlan_encap(inner: &[u8], p: &OuterParams, v: u32) -> Vec<u8> {
    let t = VxlanTemplate::new(p, VXLAN_PORT).expect("template");
    let mut f = framed(inner, t.overhead());
    t.encap(&mut f, vni(v), tunnel::flow_hash(inner), 0x0101)
        .expect("VXLAN encap");
    f.data().to_vec()
}

fn gre_encap(inner: &[u8], p: &OuterParams, opts: GreOptions, key: u32, seq: u32) -> Vec<u8> {
    let t = GreTemplate::new(p, opts).expect("template");
    let mut f = framed(inner, t.overhead());
    t.encap(&mut f, GreKey::new(key), seq, 0)
        .expect("GRE encap");
    f.data().to_vec()
}

/// VXLAN over IPv4 built header by header (so the outer headers can be unusual).
fn vxlan4_manual(inner: &[u8], options: &[u8], udp_sum: bool, v: u32) -> Vec<u8> {
    let (s, d) = (v4(198, 18, 0, 1), v4(198, 18, 0, 2));
    let mut pl = vxlan_hdr(v).to_vec();
    pl.extend_from_slice(inner);
    let sum = if udp_sum {
        UdpSum::V4(s, d)
    } else {
        UdpSum::None
    };
    let u = udp(49152 + 17, VXLAN_PORT, &pl, sum);
    let ip = ipv4(s, d, protocol::UDP, &u, |r| {
        r.options_len = options.len() as u8;
        r.options[..options.len()].copy_from_slice(options);
    });
    eth(NEXT_HOP, HOST, EtherType::Ipv4, &ip)
}

/// VXLAN over IPv6 with a hop-by-hop and a destination options header before UDP.
fn vxlan6_ext(inner: &[u8], v: u32) -> Vec<u8> {
    let (s, d) = (v6("2001:db8::1"), v6("2001:db8::2"));
    let mut pl = vxlan_hdr(v).to_vec();
    pl.extend_from_slice(inner);
    let u = udp(49152 + 99, VXLAN_PORT, &pl, UdpSum::V6(&s, &d));
    let mut exts = opts_ext(ext::DEST_OPTS).to_vec();
    exts.extend_from_slice(&opts_ext(protocol::UDP));
    eth(
        NEXT_HOP,
        HOST,
        EtherType::Ipv6,
        &ipv6(s, d, ext::HOP_BY_HOP, &exts, &u),
    )
}

/// Offset of the outer IPv4 header in the frames built here.
const IP: usize = encap::ETH_HLEN;

fn refill_ipv4_checksum(frame: &mut [u8]) {
    ipv4::Packet::new_unchecked(&mut frame[IP..]).fill_checksum();
}

// ---------------------------------------------------------------------------------
// The seeds.

fn parse_seeds() -> Seeds {
    let mut s = Seeds::new();
    let mut add = |name: &str, b: Vec<u8>| {
        s.insert(name.to_string(), b);
    };
    let arp = arp_request(v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    add("arp-request", arp.clone());
    add(
        "dot1q-ipv4-udp",
        push_tag(&vm_ipv4_udp(32), Tpid::Dot1Q, 100, 5),
    );
    let qinq = push_tag(
        &push_tag(&vm_ipv6_udp(24), Tpid::Dot1Q, 10, 0),
        Tpid::Dot1Ad,
        2000,
        3,
    );
    add("qinq-ipv6-udp", qinq.clone());
    {
        let (s4, d4) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
        let u = udp(1234, 5678, b"options!", UdpSum::V4(s4, d4));
        // Record-route-ish option bytes: NOP, NOP, then a 4-byte option, EOL padding.
        let ip = ipv4(s4, d4, protocol::UDP, &u, |r| {
            let o = [1, 1, 0x94, 4, 0, 0, 0, 0];
            r.options_len = o.len() as u8;
            r.options[..o.len()].copy_from_slice(&o);
        });
        add("ipv4-options-udp", eth(VM_B, VM_A, EtherType::Ipv4, &ip));
    }
    {
        let (s6, d6) = (v6("fd00::1"), v6("fd00::2"));
        let u = udp(1234, 5678, b"ext hdrs", UdpSum::V6(&s6, &d6));
        let mut exts = opts_ext(ext::ROUTING).to_vec();
        // Routing header type 0 would be refused by a host; here it is only parsed.
        exts.extend_from_slice(&[ext::DEST_OPTS, 0, 0, 0, 0, 0, 0, 0]);
        exts.extend_from_slice(&opts_ext(protocol::UDP));
        let ip = ipv6(s6, d6, ext::HOP_BY_HOP, &exts, &u);
        add("ipv6-ext-hdrs-udp", eth(VM_B, VM_A, EtherType::Ipv6, &ip));
        // Authentication header (length in 4-byte units) then UDP.
        let mut ah = vec![protocol::UDP, 4, 0, 0];
        ah.extend_from_slice(&[0u8; 20]);
        let ip = ipv6(s6, d6, ext::AUTH, &ah, &u);
        add("ipv6-auth-hdr-udp", eth(VM_B, VM_A, EtherType::Ipv6, &ip));
        // Fragment header: parse stops there.
        let frag = [protocol::UDP, 0, 0, 1, 0, 0, 0, 42];
        let ip = ipv6(s6, d6, ext::FRAGMENT, &frag, &u);
        add("ipv6-fragment-hdr", eth(VM_B, VM_A, EtherType::Ipv6, &ip));
    }
    {
        let (s4, d4) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
        let ip = ipv4(s4, d4, protocol::TCP, &tcp_syn(40001, 443), |_| {});
        add("ipv4-tcp-syn", eth(VM_B, VM_A, EtherType::Ipv4, &ip));
        let u = udp(1234, 5678, &[0xee; 64], UdpSum::None);
        let ip = ipv4(s4, d4, protocol::UDP, &u, |r| r.more_frags = true);
        add("ipv4-fragment-udp", eth(VM_B, VM_A, EtherType::Ipv4, &ip));
        let mut t = vm_ipv4_udp(40);
        t.truncate(t.len() - 10);
        add("truncated-ipv4", t);
    }
    add("vxlan-ipv4-arp", vxlan_encap(&arp, &params4(), 5010));
    add(
        "vxlan-ipv6-dot1q-ipv4-udp",
        vxlan_encap(
            &push_tag(&vm_ipv4_udp(16), Tpid::Dot1Q, 42, 0),
            &params6(),
            0xabcdef,
        ),
    );
    add(
        "vxlan-in-vxlan",
        vxlan_encap(&vxlan_encap(&arp, &params4(), 1), &params6(), 2),
    );
    add(
        "gre-key-seq",
        gre_encap(
            &vm_ipv4_udp(20),
            &params4(),
            GreOptions {
                checksum: false,
                seq: true,
            },
            0x0102_0304,
            7,
        ),
    );
    add(
        "gre-csum-key-ipv6",
        gre_encap(
            &qinq,
            &params6(),
            GreOptions {
                checksum: true,
                seq: false,
            },
            99,
            0,
        ),
    );
    {
        // GRE carrying IPv4 (protocol 0x0800): GRE, but not an Ethernet tunnel.
        let mut g = [0u8; 8];
        GreRepr {
            checksum: false,
            key: Some(GreKey::new(5)),
            seq: None,
            protocol: EtherType::Ipv4,
        }
        .emit(&mut gre::Packet::new_unchecked(&mut g[..]));
        let (s4, d4) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
        let mut pl = g.to_vec();
        pl.extend_from_slice(&ipv4(
            s4,
            d4,
            protocol::UDP,
            &udp(1, 2, b"x", UdpSum::None),
            |_| {},
        ));
        let ip = ipv4(
            v4(198, 18, 0, 1),
            v4(198, 18, 0, 2),
            protocol::GRE,
            &pl,
            |_| {},
        );
        add(
            "gre-ipv4-payload",
            eth(NEXT_HOP, HOST, EtherType::Ipv4, &ip),
        );
    }
    {
        let mut f = push_tag(&vm_ipv4_udp(8), Tpid::Dot1Q, 100, 0);
        f[14] |= 0x0f;
        f[15] = 0xff;
        add("vid-4095", f);
        let triple = push_tag(&push_tag(&qinq, Tpid::Dot1Q, 7, 0), Tpid::Dot1Ad, 8, 0);
        add("triple-tag", triple);
        let prio = {
            let mut fr = framed(&vm_ipv4_udp(8), 4);
            let tag = VlanTag {
                tpid: Tpid::Dot1Q,
                pcp: Pcp::from_bits(6),
                dei: true,
                vid: None,
            };
            vlan::push(&mut fr, tag).expect("push");
            fr.data().to_vec()
        };
        add("priority-tag-ipv4-udp", prio);
    }
    {
        // Neighbour discovery and ARP frames as the underlay sees them.
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let (a, b): (std::net::Ipv6Addr, std::net::Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let mut buf = [0u8; 128];
        let n = encap::neigh::nd_solicit(&mut buf, mac, a, b).expect("NS");
        add("nd-solicit", buf[..n].to_vec());
        let n = encap::neigh::nd_advert(&mut buf, mac, b, Some((a, mac))).expect("NA");
        add("nd-advert", buf[..n].to_vec());
        let n = encap::neigh::nd_advert(&mut buf, mac, b, None).expect("NA to all nodes");
        add("nd-advert-all-nodes", buf[..n].to_vec());
        let n = encap::neigh::arp_reply(&mut buf, mac, v4(10, 0, 0, 2), mac, v4(10, 0, 0, 1))
            .expect("ARP reply");
        add("arp-reply", buf[..n].to_vec());
    }
    s
}

/// Decap seeds: the control byte, then the frame. The bool says whether the frame
/// decapsulates (as VXLAN or as GRE) under that control byte.
fn decap_seeds() -> BTreeMap<String, (Vec<u8>, bool)> {
    let mut s = BTreeMap::new();
    let mut add = |name: &str, ctl: u8, frame: Vec<u8>, accepted: bool| {
        let mut b = vec![ctl];
        b.extend_from_slice(&frame);
        s.insert(name.to_string(), (b, accepted));
    };
    let plain = decap::control(false, false, 0, 0);
    let strict = decap::control(true, false, 16, 16);
    let zero6 = decap::control(false, true, 64, 0);
    let arp = arp_request(v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let inner4 = vm_ipv4_udp(64);

    add(
        "vxlan-ipv4-arp",
        plain,
        vxlan_encap(&arp, &params4(), 5010),
        true,
    );
    add(
        "vxlan-ipv4-udp-csum",
        plain,
        vxlan4_manual(&inner4, &[], true, 77),
        true,
    );
    // Outer IPv4 options are refused (as Open vSwitch's native tunnels do).
    add(
        "vxlan-ipv4-options",
        strict,
        vxlan4_manual(&inner4, &[1, 1, 1, 0], false, 78),
        false,
    );
    let v6 = vxlan_encap(&vm_ipv6_udp(40), &params6(), 0x00ff_ffff);
    add("vxlan-ipv6-strict", strict, v6.clone(), true);
    let mut z = v6.clone();
    z[IP + ipv6::HEADER_LEN + 6..IP + ipv6::HEADER_LEN + 8].fill(0);
    add("vxlan-ipv6-zero-csum-allowed", zero6, z.clone(), true);
    add("vxlan-ipv6-zero-csum-refused", plain, z, false);
    add("vxlan-ipv6-ext-hdrs", strict, vxlan6_ext(&arp, 4242), true);
    let mut r = vxlan_encap(&arp, &params4(), 9);
    r[IP + 20 + 8 + 1] = 0x80; // a reserved bit of the VXLAN header (UDP checksum is 0)
    add("vxlan-ipv4-reserved-bits", plain, r.clone(), true);
    add("vxlan-ipv4-reserved-bits-strict", strict, r, false);
    let mut padded = vxlan_encap(&[0xab; 14], &params4(), 3);
    padded.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    add("vxlan-ipv4-min-inner-trailer", plain, padded, true);
    add(
        "vxlan-in-vxlan",
        zero6,
        vxlan_encap(&vxlan_encap(&arp, &params4(), 1), &params6(), 2),
        true,
    );
    add(
        "gre-in-vxlan",
        plain,
        vxlan_encap(
            &gre_encap(&arp, &params4(), GreOptions::default(), 1, 0),
            &params4(),
            2,
        ),
        true,
    );
    let gks = GreOptions {
        checksum: false,
        seq: true,
    };
    add(
        "gre-key-seq",
        plain,
        gre_encap(&inner4, &params4(), gks, 0x0102_0304, 7),
        true,
    );
    let gc = GreOptions {
        checksum: true,
        seq: false,
    };
    let gre6 = gre_encap(&arp, &params6(), gc, 99, 0);
    add("gre-csum-key-ipv6", strict, gre6.clone(), true);
    let mut bad = gre6;
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    add("gre-bad-csum", plain, bad, false);
    let mut small = gre_encap(&[0xcd; 14], &params4(), GreOptions::default(), 1, 0);
    small.resize(encap::ETH_ZLEN, 0);
    add("gre-min-inner-eth-padding", plain, small, true);
    let mut routing = gre_encap(&arp, &params4(), GreOptions::default(), 1, 0);
    routing[IP + 20] |= 0x40;
    add("gre-routing-bit", plain, routing, false);

    let good = vxlan_encap(&arp, &params4(), 5010);
    let mut frag = good.clone();
    frag[IP + 6] |= 0x20; // MF
    refill_ipv4_checksum(&mut frag);
    add("vxlan-ipv4-fragment", plain, frag, false);
    let mut csum = good.clone();
    csum[IP + 10] ^= 0xff;
    add("vxlan-ipv4-bad-ip-csum", plain, csum, false);
    let mut trunc = good.clone();
    trunc.truncate(good.len() - 7);
    add("vxlan-truncated", plain, trunc, false);
    let mut no_i = good;
    no_i[IP + 20 + 8] = 0;
    add("vxlan-no-i-flag", plain, no_i, false);
    s
}

fn ops_seeds() -> Seeds {
    let mut s = Seeds::new();
    let mut add = |name: &str, input: Input| {
        s.insert(name.to_string(), input.encode());
    };
    let tag = |tpid, pcp, v: u16| VlanTag {
        tpid,
        pcp: Pcp::from_bits(pcp),
        dei: pcp & 1 == 1,
        vid: VlanId::try_new(v).ok(),
    };
    let outer = |params: OuterParams, keep| Outer {
        params,
        ip_id: 0x4242,
        keep,
    };
    let vx = |params, keep, v| {
        Op::Vxlan(VxlanOp {
            outer: outer(params, keep),
            port: VXLAN_PORT,
            vni: vni(v),
            hash: 0x1234_5678,
        })
    };
    let gre = |params, keep, checksum, seq| {
        Op::Gre(ops::GreOp {
            outer: outer(params, keep),
            opts: GreOptions { checksum, seq },
            key: GreKey::new(0xfeed_0001),
            seq: 1000,
        })
    };
    let ipv4_frame = vm_ipv4_udp(64);
    let arp = arp_request(v4(10, 0, 0, 1), v4(10, 0, 0, 2));

    add(
        "push-pop-dot1q",
        Input {
            headroom: 8,
            tailroom: 0,
            ops: vec![Op::Push(tag(Tpid::Dot1Q, 5, 100)), Op::Pop],
            frame: ipv4_frame.clone(),
        },
    );
    add(
        "qinq-push-translate-pop",
        Input {
            headroom: 16,
            tailroom: 0,
            ops: vec![
                Op::Push(tag(Tpid::Dot1Q, 0, 10)),
                Op::Push(tag(Tpid::Dot1Ad, 7, 2000)),
                Op::Translate(vid(4094)),
                Op::Pop,
                Op::Translate(vid(11)),
                Op::Pop,
            ],
            frame: vm_ipv6_udp(30),
        },
    );
    add(
        "short-frame-pop-pads",
        Input {
            headroom: 4,
            tailroom: 46,
            ops: vec![Op::Push(tag(Tpid::Dot1Q, 1, 0)), Op::Pop],
            frame: vec![0x11; 14],
        },
    );
    add(
        "short-frame-no-tailroom",
        Input {
            headroom: 8,
            tailroom: 0,
            ops: vec![Op::Push(tag(Tpid::Dot1Ad, 2, 3)), Op::Pop],
            frame: arp[..42].to_vec(),
        },
    );
    let mut p4_clear = params4();
    p4_clear.df = false;
    p4_clear.tos = 0xb8;
    p4_clear.ttl = 1;
    add(
        "vxlan4-encap-decap",
        Input {
            headroom: 64,
            tailroom: 0,
            ops: vec![vx(params4(), false, 5010), vx(p4_clear, false, 0)],
            frame: arp.clone(),
        },
    );
    add(
        "vxlan6-encap-decap",
        Input {
            headroom: 128,
            tailroom: 0,
            ops: vec![vx(params6(), false, 0xff_ffff)],
            frame: ipv4_frame.clone(),
        },
    );
    add(
        "gre4-csum-seq",
        Input {
            headroom: 64,
            tailroom: 0,
            ops: vec![gre(params4(), false, true, true)],
            frame: ipv4_frame.clone(),
        },
    );
    add(
        "gre6-key",
        Input {
            headroom: 64,
            tailroom: 0,
            ops: vec![gre(params6(), false, false, false)],
            frame: arp.clone(),
        },
    );
    add(
        "vlan-vxlan-keep-decap-pop",
        Input {
            headroom: 128,
            tailroom: 0,
            ops: vec![
                Op::Push(tag(Tpid::Dot1Q, 3, 300)),
                vx(params4(), true, 300),
                Op::DecapVxlan(DecapConfig::default()),
                Op::Pop,
            ],
            frame: ipv4_frame.clone(),
        },
    );
    add(
        "gre-in-vxlan-nested",
        Input {
            headroom: 256,
            tailroom: 8,
            ops: vec![
                gre(params6(), true, true, false),
                vx(params4(), true, 7),
                Op::DecapVxlan(DecapConfig::default()),
                Op::DecapGre,
            ],
            frame: arp.clone(),
        },
    );
    let mut small_mtu = params4();
    small_mtu.mtu = 1500;
    add(
        "vxlan-mtu-too-big",
        Input {
            headroom: 64,
            tailroom: 0,
            ops: vec![vx(small_mtu, false, 1)],
            frame: vec![0x22; 1500],
        },
    );
    add(
        "encap-no-headroom",
        Input {
            headroom: 20,
            tailroom: 0,
            ops: vec![vx(params4(), false, 1), gre(params6(), false, false, true)],
            frame: ipv4_frame,
        },
    );
    s
}

// ---------------------------------------------------------------------------------

/// Whether `frame` decapsulates as VXLAN (port 4789, config from `ctl`) or as GRE.
fn decapsulates(ctl: u8, frame: &[u8]) -> bool {
    let cfg = decap::config(ctl);
    let vx = tunnel::decap_vxlan(&mut framed(frame, 0), &cfg).is_ok();
    let gre = tunnel::decap_gre(&mut framed(frame, 0)).is_ok();
    vx || gre
}

fn write_or_check(dir: &Path, seeds: &Seeds, check: bool, stale: &mut Vec<PathBuf>) {
    if !check {
        std::fs::create_dir_all(dir).expect("create corpus dir");
    }
    for (name, bytes) in seeds {
        let path = dir.join(format!("{name}.bin"));
        if check {
            if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
                stale.push(path);
            }
        } else {
            std::fs::write(&path, bytes).expect("write seed");
        }
    }
    // Files in the directory that this generator does not make.
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let known = name
                .strip_suffix(".bin")
                .is_some_and(|n| seeds.contains_key(n));
            if !known {
                stale.push(e.path());
            }
        }
    }
}

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("usage: gen_seeds [--check]   (unknown argument {other:?})");
            return ExitCode::from(2);
        }
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");

    let parse = parse_seeds();
    for b in parse.values() {
        vswitch_fuzz::parse::run(b);
    }

    let decap = decap_seeds();
    for (name, (b, accepted)) in &decap {
        assert_eq!(
            decapsulates(b[0], &b[1..]),
            *accepted,
            "decap seed {name}: expected accepted = {accepted}"
        );
        decap::run(b);
    }
    let decap: Seeds = decap.into_iter().map(|(k, (b, _))| (k, b)).collect();

    let ops = ops_seeds();
    for (name, b) in &ops {
        let input = Input::decode(b).expect("an encoded input decodes");
        assert_eq!(&input.encode(), b, "ops seed {name} does not round-trip");
        let done = ops::run(&input);
        let expect_fail = name.contains("no-headroom")
            || name.contains("too-big")
            || name.contains("no-tailroom");
        assert_eq!(
            done.iter().all(|&ok| ok),
            !expect_fail,
            "ops seed {name}: operation results {done:?}"
        );
    }

    let mut stale = Vec::new();
    write_or_check(&root.join("parse"), &parse, check, &mut stale);
    write_or_check(&root.join("decap"), &decap, check, &mut stale);
    write_or_check(&root.join("ops"), &ops, check, &mut stale);
    let n = parse.len() + decap.len() + ops.len();
    if stale.is_empty() {
        println!(
            "gen_seeds: {} {n} seeds in {} (parse {}, decap {}, ops {})",
            if check { "checked" } else { "wrote" },
            root.display(),
            parse.len(),
            decap.len(),
            ops.len()
        );
        ExitCode::SUCCESS
    } else {
        for p in &stale {
            eprintln!(
                "gen_seeds: {} {}",
                if check {
                    "differs or unknown:"
                } else {
                    "not generated by gen_seeds (remove it or add it here):"
                },
                p.display()
            );
        }
        ExitCode::FAILURE
    }
}
