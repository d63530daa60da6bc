//! The `parse` target: any bytes through the whole-frame parser and every header view.
//!
//! - `checksum` (sum, fold, split sums, RFC 1624 update) against a naive RFC 1071 sum.
//! - `parse::parse(data, 4789)` and `parse::parse_l2(data)` must not panic, must agree
//!   with each other and with `vlan::outer_tag`, and every offset they report must lie
//!   inside the frame.
//! - Every view's `new_checked`, and where it succeeds its Repr's `parse`, is run on
//!   the bytes at offset 0 and at each layer offset `parse` found (and the inner frame
//!   of a tunnel is parsed again, recursively).
//! - ICMPv6 Neighbor Discovery inside an IPv6 packet, and the l2population ARP
//!   responder on the frame itself (a refused frame is left untouched).
//! - A Repr that parses is emitted into a fresh buffer: parsing that again must give the
//!   same Repr (emit → parse identity), and the emitted header must be the original
//!   bytes except where the format lets them differ (checksums, bits the Repr does not
//!   keep).

use encap::arp::{self, ArpRepr};
use encap::checksum;
use encap::ethernet::{self, EthernetRepr};
use encap::gre::{self, GreRepr};
use encap::icmpv6::{self, NdRepr};
use encap::ipv4::{self, Ipv4Repr};
use encap::ipv6::{self, Ipv6Repr};
use encap::neigh;
use encap::parse::{parse, parse_l2, Tunnel, L3, L4};
use encap::tunnel::{flow_hash, source_port, SRC_PORT_MIN};
use encap::udp::{self, UdpRepr};
use encap::vlan::{self, VlanRepr};
use encap::vxlan::{self, VxlanRepr};
use encap::ETH_HLEN;

/// VXLAN's port, as the dataplane parses with it.
pub const PORT: u16 = vxlan::DEFAULT_PORT;

/// Nested tunnels parsed at most (the input is finite anyway; this bounds the work).
const MAX_DEPTH: usize = 4;

/// Runs the target on `data`.
pub fn run(data: &[u8]) {
    checksums(data);
    if data.len() > 1 {
        checksums(&data[1..]); // another alignment
    }
    views(data);
    frame(data, 0);
    arp_responder(data);
}

/// RFC 1071 the slow way: 16-bit big-endian words (an odd last byte padded with zero),
/// end-around carry after every addition.
fn naive_sum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for w in data.chunks(2) {
        let v = u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)]);
        s += u32::from(v);
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Ones' complement equality: 0x0000 and 0xffff are both zero.
fn same_1c(a: u16, b: u16) -> bool {
    a == b || (a | b == 0xffff && a & b == 0)
}

/// The checksum module against [`naive_sum`], whole and in two pieces, and the
/// incremental update (RFC 1624) against a full recomputation.
fn checksums(data: &[u8]) {
    let n = naive_sum(data);
    assert_eq!(
        checksum::sum_words(data),
        n,
        "sum_words differs from RFC 1071"
    );
    assert_eq!(checksum::fold(checksum::accumulate(0, data)), n);
    assert_eq!(checksum::checksum(data), !n);
    // Split at an even offset: partial sums add up.
    let k = (data.len() / 2) & !1;
    let (a, b) = data.split_at(k);
    let two = checksum::fold(checksum::accumulate(checksum::accumulate(0, a), b));
    assert!(same_1c(two, n), "split sum {two:#06x} != {n:#06x}");
    // Incremental update of one word, the new value taken from the last two bytes.
    if data.len() >= 4 {
        let i = (usize::from(data[0]) % (data.len() - 2)) & !1;
        let new = u16::from_be_bytes([data[data.len() - 2], data[data.len() - 1]]);
        let old = u16::from_be_bytes([data[i], data[i + 1]]);
        let mut changed = data.to_vec();
        changed[i..i + 2].copy_from_slice(&new.to_be_bytes());
        let inc = checksum::update(checksum::checksum(data), old, new);
        let full = checksum::checksum(&changed);
        assert!(same_1c(inc, full), "update {inc:#06x} != {full:#06x}");
    }
}

fn frame(data: &[u8], depth: usize) {
    let h = flow_hash(data);
    assert_eq!(h, flow_hash(data), "flow_hash is not deterministic");
    assert!(source_port(h) >= SRC_PORT_MIN);

    let l2 = parse_l2(data);
    let full = parse(data, PORT);
    match (&l2, &full) {
        (Ok(l2), Ok(p)) => assert_eq!(l2, &p.l2, "parse and parse_l2 disagree on L2"),
        (Err(e), r) => assert_eq!(
            r.as_ref().err(),
            Some(e),
            "parse_l2 failed but parse did not fail the same way"
        ),
        (Ok(_), Err(_)) => {}
    }
    // The outermost tag as parse_l2 and as vlan::outer_tag see it.
    if let Ok(l2) = &l2 {
        assert!(l2.l3_offset <= data.len());
        assert_eq!(l2.l3_offset, ETH_HLEN + 4 * l2.tag_count());
        assert!(
            l2.tags[0].is_some() || l2.tags[1].is_none(),
            "inner tag without outer"
        );
        assert!(
            !l2.ethertype.is_vlan_tpid(),
            "a fourth TPID parsed as EtherType"
        );
        assert_eq!(vlan::outer_tag(data), Ok(l2.tags[0]));
        views(&data[l2.l3_offset..]);
    }
    let Ok(p) = full else { return };
    // Same parse for another VXLAN port, except for the tunnel.
    if let Ok(q) = parse(data, PORT ^ 1) {
        assert_eq!((q.l2, q.l3), (p.l2, p.l3));
    }
    if let L3::Ip {
        l4_offset,
        fragment,
        ..
    } = p.l3
    {
        assert!(l4_offset <= data.len());
        if fragment {
            assert_eq!(p.l4, L4::None);
            assert_eq!(p.tunnel, None);
        } else {
            assert!(l4_offset >= p.l2.l3_offset + 20);
            views(&data[l4_offset..]);
        }
    }
    match p.l4 {
        L4::Udp { dst_port, .. } => {
            // VXLAN iff on the port with a VXLAN header (I flag set) after UDP; anything
            // else on the port is summarised as plain UDP.
            let vxlan_hdr = || {
                let L3::Ip { l4_offset, .. } = p.l3 else {
                    return false;
                };
                let u = udp::Packet::new_checked(&data[l4_offset..]).expect("parse took it");
                vxlan::Packet::new_checked(u.payload()).is_ok_and(|v| v.i_flag())
            };
            assert_eq!(
                dst_port == PORT && vxlan_hdr(),
                matches!(p.tunnel, Some(Tunnel::Vxlan { .. })),
            );
        }
        L4::Gre(r) => assert_eq!(
            r.protocol == ethernet::EtherType::TransparentEthernetBridging,
            matches!(p.tunnel, Some(Tunnel::Gre { .. })),
        ),
        L4::None | L4::Tcp { .. } => assert_eq!(p.tunnel, None),
    }
    let inner = match p.tunnel {
        Some(Tunnel::Vxlan { inner_offset, .. }) | Some(Tunnel::Gre { inner_offset, .. }) => {
            inner_offset
        }
        None => return,
    };
    assert!(inner <= data.len(), "inner offset {inner} beyond the frame");
    views(&data[inner..]);
    if depth < MAX_DEPTH {
        frame(&data[inner..], depth + 1);
    }
}

/// Every view and Repr at the start of `b`.
pub fn views(b: &[u8]) {
    ethernet_view(b);
    vlan_view(b);
    arp_view(b);
    ipv4_view(b);
    ipv6_view(b);
    udp_view(b);
    vxlan_view(b);
    gre_view(b);
}

fn ethernet_view(b: &[u8]) {
    let Ok(p) = ethernet::Packet::new_checked(b) else {
        assert!(b.len() < ETH_HLEN);
        return;
    };
    assert_eq!(p.payload(), &b[ETH_HLEN..]);
    let r = EthernetRepr::parse(&p);
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut ethernet::Packet::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &b[..ETH_HLEN], "Ethernet emit differs");
    let q = ethernet::Packet::new_checked(&out[..]).expect("emitted Ethernet header");
    assert_eq!(EthernetRepr::parse(&q), r);
}

fn vlan_view(b: &[u8]) {
    let Ok(p) = vlan::Packet::new_checked(b) else {
        assert!(b.len() < vlan::HEADER_LEN);
        return;
    };
    assert_eq!(p.payload(), &b[vlan::HEADER_LEN..]);
    let Ok(r) = VlanRepr::parse(&p) else {
        assert_eq!(p.vid_raw(), 0xfff, "VlanRepr refused a VID other than 4095");
        return;
    };
    assert_eq!(r.vid.map_or(0, |v| v.get()), p.vid_raw());
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut vlan::Packet::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &b[..vlan::HEADER_LEN], "VLAN emit differs");
    let q = vlan::Packet::new_checked(&out[..]).expect("emitted VLAN header");
    assert_eq!(VlanRepr::parse(&q), Ok(r));
}

fn arp_view(b: &[u8]) {
    let Ok(p) = arp::Packet::new_checked(b) else {
        assert!(b.len() < arp::PACKET_LEN);
        return;
    };
    let Ok(r) = ArpRepr::parse(&p) else { return };
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut arp::Packet::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &b[..arp::PACKET_LEN], "ARP emit differs");
    let q = arp::Packet::new_checked(&out[..]).expect("emitted ARP packet");
    assert_eq!(ArpRepr::parse(&q), Ok(r));
}

fn ipv4_view(b: &[u8]) {
    let Ok(p) = ipv4::Packet::new_checked(b) else {
        return;
    };
    let (hl, tl) = (p.header_len(), usize::from(p.total_len()));
    assert!(ipv4::HEADER_LEN <= hl && hl <= tl && tl <= b.len());
    assert_eq!(p.options(), &b[ipv4::HEADER_LEN..hl]);
    assert_eq!(p.payload(), &b[hl..tl]);
    let Ok(r) = Ipv4Repr::parse(&p) else { return };
    assert_eq!(r.buffer_len(), hl);
    assert_eq!(usize::from(r.payload_len), tl - hl);
    let mut out = vec![0u8; r.buffer_len() + usize::from(r.payload_len)];
    r.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    let q = ipv4::Packet::new_checked(&out[..]).expect("emitted IPv4 header");
    assert!(q.verify_checksum(), "emitted IPv4 checksum does not verify");
    assert_eq!(Ipv4Repr::parse(&q), Ok(r), "IPv4 emit → parse differs");
    // Equal but for the checksum (0x0000 and 0xffff both verify) and the reserved flag,
    // which the Repr does not keep.
    let mask = |h: &[u8]| {
        let mut h = h[..hl].to_vec();
        h[6] &= 0x7f;
        h[10] = 0;
        h[11] = 0;
        h
    };
    assert_eq!(mask(&out), mask(b), "IPv4 emit differs");
}

fn ipv6_view(b: &[u8]) {
    let Ok(p) = ipv6::Packet::new_checked(b) else {
        return;
    };
    let end = ipv6::HEADER_LEN + usize::from(p.payload_len());
    assert!(end <= b.len());
    assert_eq!(p.payload(), &b[ipv6::HEADER_LEN..end]);
    if let Ok((_, off)) = p.upper_layer() {
        assert!(
            ipv6::HEADER_LEN <= off && off <= end,
            "upper layer at {off}"
        );
    }
    let Ok(r) = Ipv6Repr::parse(&p) else {
        assert_ne!(p.version(), 6);
        return;
    };
    let mut out = vec![0u8; r.buffer_len() + usize::from(r.payload_len)];
    r.emit(&mut ipv6::Packet::new_unchecked(&mut out[..]));
    assert_eq!(
        &out[..ipv6::HEADER_LEN],
        &b[..ipv6::HEADER_LEN],
        "IPv6 emit differs"
    );
    let q = ipv6::Packet::new_checked(&out[..]).expect("emitted IPv6 header");
    assert_eq!(Ipv6Repr::parse(&q), Ok(r));
    nd(&r, &p, b);
}

/// ICMPv6 Neighbor Discovery in an IPv6 packet: a message that parses is emitted again
/// (for the same addresses) and must parse to the same Repr with a valid checksum.
fn nd<T: AsRef<[u8]>>(ip: &Ipv6Repr, p: &ipv6::Packet<T>, b: &[u8]) {
    let Ok((next, off)) = p.upper_layer() else {
        return;
    };
    if next != 58 {
        return;
    }
    let end = ipv6::HEADER_LEN + usize::from(p.payload_len());
    let Some(msg) = b.get(off..end) else {
        return;
    };
    let Ok(m) = icmpv6::Packet::new_checked(msg) else {
        return;
    };
    let Ok(r) = NdRepr::parse(ip, &m) else {
        return;
    };
    let mut out = vec![0u8; r.buffer_len()];
    let mut q = icmpv6::Packet::new_unchecked(&mut out[..]);
    r.emit(&ip.src, &ip.dst, &mut q);
    let q = icmpv6::Packet::new_checked(&out[..]).expect("emitted ND message");
    assert!(q.verify_checksum(&ip.src, &ip.dst), "ND emit checksum");
    assert_eq!(NdRepr::parse(ip, &q), Ok(r), "ND emit -> parse");
}

/// The l2population ARP responder on any frame: a refused frame is left untouched, an
/// answer is a reply to the request's sender.
fn arp_responder(b: &[u8]) {
    let mut out = [0u8; 128];
    match neigh::arp_responder(b, encap::MacAddr([2, 0, 0, 0, 0, 9]), &mut out) {
        Ok(len) => {
            let req = neigh::arp_request_of(b).expect("answered a request");
            let p = arp::Packet::new_checked(&out[ETH_HLEN..len]).expect("reply parses");
            let r = ArpRepr::parse(&p).expect("reply parses");
            assert_eq!(r.target_mac, req.sender_mac);
            assert_eq!(r.target_ip, req.sender_ip);
            assert_eq!(r.sender_ip, req.target_ip);
        }
        Err(_) => {
            let mut copy = b.to_vec();
            let before = copy.clone();
            assert!(
                neigh::arp_responder_in_place(&mut copy, encap::MacAddr([2, 0, 0, 0, 0, 9]))
                    .is_err()
            );
            assert_eq!(copy, before, "a refused frame is left untouched");
        }
    }
}

fn udp_view(b: &[u8]) {
    let Ok(p) = udp::Packet::new_checked(b) else {
        return;
    };
    let len = usize::from(p.len());
    assert!(udp::HEADER_LEN <= len && len <= b.len());
    assert_eq!(p.payload(), &b[udp::HEADER_LEN..len]);
    let r = UdpRepr::parse(&p);
    let mut out = vec![0u8; r.buffer_len() + usize::from(r.payload_len)];
    r.emit(&mut udp::Packet::new_unchecked(&mut out[..]));
    assert_eq!(&out[..6], &b[..6], "UDP emit differs");
    assert_eq!(&out[6..8], &[0, 0], "UDP emit leaves a checksum");
    let q = udp::Packet::new_checked(&out[..]).expect("emitted UDP header");
    assert_eq!(UdpRepr::parse(&q), r);
}

fn vxlan_view(b: &[u8]) {
    let Ok(p) = vxlan::Packet::new_checked(b) else {
        assert!(b.len() < vxlan::HEADER_LEN);
        return;
    };
    let lax = VxlanRepr::parse(&p, false);
    let strict = VxlanRepr::parse(&p, true);
    assert_eq!(lax.is_ok(), p.i_flag());
    assert_eq!(strict.is_ok(), p.i_flag() && !p.reserved_set());
    let Ok(r) = lax else { return };
    if let Ok(s) = strict {
        assert_eq!(s, r);
    }
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut vxlan::Packet::new_unchecked(&mut out[..]));
    assert_eq!(&out[4..7], &b[4..7], "VXLAN emit changed the VNI");
    if !p.reserved_set() {
        assert_eq!(&out[..], &b[..vxlan::HEADER_LEN], "VXLAN emit differs");
    }
    let q = vxlan::Packet::new_checked(&out[..]).expect("emitted VXLAN header");
    assert!(!q.reserved_set(), "VXLAN emit sets reserved bits");
    assert_eq!(VxlanRepr::parse(&q, true), Ok(r));
}

fn gre_view(b: &[u8]) {
    let Ok(p) = gre::Packet::new_checked(b) else {
        return;
    };
    let hl = p.header_len();
    assert!((gre::BASE_LEN..=gre::MAX_LEN).contains(&hl) && hl <= b.len());
    assert_eq!(p.payload(), &b[hl..]);
    let Ok(r) = GreRepr::parse(&p) else { return };
    assert_eq!(r.buffer_len(), hl);
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut gre::Packet::new_unchecked(&mut out[..]));
    // Flags C, K, S and the protocol are kept; the checksum word is emitted as zero
    // (fill_checksum writes it), the other flag bits are zero in what parses.
    let fv = u16::from_be_bytes([b[0], b[1]]) & 0xb000;
    assert_eq!(&out[0..2], &fv.to_be_bytes(), "GRE emit flags differ");
    assert_eq!(&out[2..4], &b[2..4], "GRE emit protocol differs");
    let opt = gre::BASE_LEN + 4 * usize::from(r.checksum);
    assert_eq!(&out[opt..], &b[opt..hl], "GRE emit key/seq differ");
    let q = gre::Packet::new_checked(&out[..]).expect("emitted GRE header");
    assert_eq!(GreRepr::parse(&q), Ok(r), "GRE emit → parse differs");
}
