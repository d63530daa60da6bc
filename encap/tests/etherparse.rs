//! Cross-checks of `encap` against etherparse 0.16, an independent implementation of the
//! same wire formats.
//!
//! Direction 1 (`ours_*`): frames this crate emits — with its Reprs, `vlan::{push, pop,
//! translate}` and the tunnel templates — are sliced by etherparse, which must read the
//! same field values, and the checksums we wrote must equal etherparse's own
//! calculations (`Ipv4Header::calc_header_checksum`, `UdpHeader::calc_checksum_ipv4/6`,
//! `checksum::Sum16BitWords`). etherparse 0.16 parses neither ARP, GRE nor VXLAN: those
//! bodies are checked as far as etherparse goes (EtherType / IP protocol / UDP payload)
//! and then decoded by hand from the RFC layouts.
//!
//! Direction 2 (`theirs_*`): frames built with etherparse (`PacketBuilder`, header
//! structs) from arbitrary field values are read by our views, Reprs, `parse::parse` and
//! the decapsulation functions, which must see what etherparse wrote. etherparse 0.16
//! cannot build ARP, GRE or VXLAN headers, so those bodies are written by hand inside
//! etherparse-built Ethernet/VLAN/IP/UDP headers.

// Helper functions (not only `#[test]` bodies) unwrap and panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::net::{IpAddr, Ipv4Addr};

use encap::arp::{self, ArpRepr, Operation};
use encap::ethernet::{self, EthernetRepr};
use encap::ipv4::{self, Ipv4Repr};
use encap::ipv6::{self, Ipv6Repr};
use encap::parse::{self, Tunnel, L3, L4};
use encap::tunnel::{self, DecapConfig, GreOptions, GreTemplate, OuterParams, VxlanTemplate};
use encap::udp::{self, UdpRepr};
use encap::vlan::{self, Tpid, VlanRepr, VlanTag};
use encap::{ErrorKind, EtherType, Frame, GreKey, Layer, MacAddr, Pcp, VlanId, Vni};
use etherparse as ep;
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// `bytes` in a fresh buffer with `head` bytes of headroom and `tail` of tailroom.
fn framed(bytes: &[u8], head: usize, tail: usize) -> Frame<Vec<u8>> {
    let mut buf = vec![0u8; head + bytes.len() + tail];
    buf[head..head + bytes.len()].copy_from_slice(bytes);
    Frame::new(buf, head, bytes.len()).unwrap()
}

/// Offset of `part` (a sub-slice) inside `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    assert!(
        p >= w && p + part.len() <= w + whole.len(),
        "not a sub-slice"
    );
    p - w
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The Internet checksum of `data` as etherparse computes it (its own implementation).
fn ep_checksum(data: &[u8]) -> u16 {
    ep::checksum::Sum16BitWords::new()
        .add_slice(data)
        .ones_complement()
        .to_be()
}

/// etherparse's strict slicing of a frame we emitted; it must accept it.
fn sliced(data: &[u8]) -> ep::SlicedPacket<'_> {
    ep::SlicedPacket::from_ethernet(data)
        .unwrap_or_else(|e| panic!("etherparse refused the frame: {e:?}\n{data:02x?}"))
}

fn ep_eth(p: &ep::SlicedPacket<'_>) -> ep::Ethernet2Header {
    match &p.link {
        Some(ep::LinkSlice::Ethernet2(e)) => e.to_header(),
        other => panic!("no Ethernet II header: {other:?}"),
    }
}

fn ep_ipv4<'a>(p: &ep::SlicedPacket<'a>) -> (ep::Ipv4Header, ep::IpPayloadSlice<'a>) {
    match &p.net {
        Some(ep::NetSlice::Ipv4(s)) => (s.header().to_header(), s.payload().clone()),
        other => panic!("no IPv4 header: {other:?}"),
    }
}

fn ep_ipv6<'a>(p: &ep::SlicedPacket<'a>) -> (ep::Ipv6Header, ep::IpPayloadSlice<'a>) {
    match &p.net {
        Some(ep::NetSlice::Ipv6(s)) => (s.header().to_header(), s.payload().clone()),
        other => panic!("no IPv6 header: {other:?}"),
    }
}

fn ep_udp<'a>(p: &ep::SlicedPacket<'a>) -> ep::UdpSlice<'a> {
    match &p.transport {
        Some(ep::TransportSlice::Udp(u)) => u.clone(),
        other => panic!("no UDP header: {other:?}"),
    }
}

fn arb_mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn arb_tag(tpid: Tpid) -> impl Strategy<Value = VlanTag> {
    (0u8..8, any::<bool>(), prop::option::of(1u16..=4094)).prop_map(move |(pcp, dei, vid)| {
        VlanTag {
            tpid,
            pcp: Pcp::try_new(pcp).unwrap(),
            dei,
            vid: vid.map(|v| VlanId::try_new(v).unwrap()),
        }
    })
}

/// etherparse's view of a tag equals ours (its VID 0 is our `None`).
fn assert_ep_tag(h: &ep::SingleVlanHeader, t: &VlanTag) {
    assert_eq!(h.pcp.value(), t.pcp.get(), "PCP");
    assert_eq!(h.drop_eligible_indicator, t.dei, "DEI");
    assert_eq!(h.vlan_id.value(), t.vid.map_or(0, VlanId::get), "VID");
}

/// IPv4 header fields for direction 1.
#[derive(Debug, Clone)]
struct V4Spec {
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    tos: u8,
    ident: u16,
    df: bool,
    mf: bool,
    frag_offset: u16,
    options: Vec<u8>,
}

fn arb_v4(fragments: bool) -> impl Strategy<Value = V4Spec> {
    let frag = if fragments {
        prop_oneof![Just((false, 0u16)), (any::<bool>(), 0u16..0x2000)].boxed()
    } else {
        Just((false, 0u16)).boxed()
    };
    (
        any::<([u8; 4], [u8; 4], u8, u8, u16, bool)>(),
        frag,
        (0usize..=10).prop_flat_map(|words| vec(any::<u8>(), words * 4)),
    )
        .prop_map(
            |((src, dst, ttl, tos, ident, df), (mf, frag_offset), options)| V4Spec {
                src,
                dst,
                ttl,
                tos,
                ident,
                df,
                mf,
                frag_offset,
                options,
            },
        )
}

fn v4_repr(s: &V4Spec, protocol: u8, payload_len: usize) -> Ipv4Repr {
    let mut r = Ipv4Repr::new(s.src.into(), s.dst.into(), protocol, payload_len as u16);
    r.ttl = s.ttl;
    r.tos = s.tos;
    r.ident = s.ident;
    r.dont_frag = s.df;
    r.more_frags = s.mf;
    r.frag_offset = s.frag_offset;
    r.options_len = s.options.len() as u8;
    r.options[..s.options.len()].copy_from_slice(&s.options);
    r
}

/// Ethernet + IPv4 + UDP (checksum filled) + payload, every header emitted by encap.
fn emit_v4_udp(
    dst: MacAddr,
    src: MacAddr,
    ip: &V4Spec,
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let repr = v4_repr(ip, ipv4::protocol::UDP, udp::HEADER_LEN + payload.len());
    let hl = repr.buffer_len();
    let mut b = vec![0u8; 14 + hl + udp::HEADER_LEN + payload.len()];
    EthernetRepr {
        dst,
        src,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut b[..]));
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut b[14..]));
    let l4 = &mut b[14 + hl..];
    l4[udp::HEADER_LEN..].copy_from_slice(payload);
    let mut u = udp::Packet::new_unchecked(l4);
    UdpRepr {
        src_port: ports.0,
        dst_port: ports.1,
        payload_len: payload.len() as u16,
    }
    .emit(&mut u);
    u.fill_checksum_v4(repr.src, repr.dst);
    b
}

/// Checks etherparse's IPv4 header against what we emitted, and its checksum against ours.
fn assert_ep_ipv4(h: &ep::Ipv4Header, s: &V4Spec, protocol: u8, payload_len: usize) {
    assert_eq!(h.source, s.src);
    assert_eq!(h.destination, s.dst);
    assert_eq!(h.time_to_live, s.ttl);
    assert_eq!(h.dscp.value(), s.tos >> 2, "DSCP");
    assert_eq!(h.ecn.value(), s.tos & 3, "ECN");
    assert_eq!(h.identification, s.ident);
    assert_eq!(h.dont_fragment, s.df);
    assert_eq!(h.more_fragments, s.mf);
    assert_eq!(h.fragment_offset.value(), s.frag_offset);
    assert_eq!(h.protocol.0, protocol);
    assert_eq!(h.options.as_slice(), &s.options[..]);
    assert_eq!(
        usize::from(h.total_len),
        20 + s.options.len() + payload_len,
        "total length"
    );
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "our IPv4 header checksum differs from etherparse's calculation"
    );
}

// ---------------------------------------------------------------------------------------
// Direction 1: what encap emits, etherparse reads the same
// ---------------------------------------------------------------------------------------

/// EtherTypes etherparse descends into (and would try to parse random payload as).
fn ep_descends(et: u16) -> bool {
    matches!(et, 0x0800 | 0x86dd | 0x8100 | 0x88a8 | 0x9100)
}

proptest! {
    #[test]
    fn ours_ethernet_repr(
        dst in arb_mac(),
        src in arb_mac(),
        et in any::<u16>(),
        payload in vec(any::<u8>(), 0..64),
    ) {
        let mut b = vec![0u8; 14];
        b.extend_from_slice(&payload);
        EthernetRepr { dst, src, ethertype: et.into() }
            .emit(&mut ethernet::Packet::new_unchecked(&mut b[..]));
        // The lax slicer reports the link layer whatever the payload is.
        let lax = ep::LaxSlicedPacket::from_ethernet(&b).unwrap();
        let Some(ep::LinkSlice::Ethernet2(e)) = &lax.link else { panic!("{lax:?}") };
        let h = e.to_header();
        prop_assert_eq!(h.destination, dst.0);
        prop_assert_eq!(h.source, src.0);
        prop_assert_eq!(h.ether_type.0, et);
        if !ep_descends(et) {
            let p = sliced(&b);
            prop_assert_eq!(ep_eth(&p), h);
            let pl = p.ether_payload().unwrap();
            prop_assert_eq!(pl.ether_type.0, et);
            prop_assert_eq!(pl.payload, &payload[..]);
            prop_assert!(p.vlan.is_none() && p.net.is_none());
        }
    }

    /// A tag written with `VlanRepr::emit` after an `EthernetRepr` with TPID 0x8100.
    #[test]
    fn ours_vlan_repr(
        dst in arb_mac(),
        src in arb_mac(),
        tag in arb_tag(Tpid::Dot1Q),
        payload in vec(any::<u8>(), 0..32),
    ) {
        let mut b = vec![0u8; 18];
        b.extend_from_slice(&payload);
        EthernetRepr { dst, src, ethertype: EtherType::Vlan }
            .emit(&mut ethernet::Packet::new_unchecked(&mut b[..]));
        VlanRepr { pcp: tag.pcp, dei: tag.dei, vid: tag.vid, ethertype: EtherType::Unknown(0x88b5) }
            .emit(&mut vlan::Packet::new_unchecked(&mut b[14..]));
        let p = sliced(&b);
        prop_assert_eq!(ep_eth(&p).ether_type, ep::EtherType::VLAN_TAGGED_FRAME);
        let Some(ep::VlanSlice::SingleVlan(v)) = &p.vlan else { panic!("{p:?}") };
        let h = v.to_header();
        assert_ep_tag(&h, &tag);
        prop_assert_eq!(h.ether_type.0, 0x88b5);
        prop_assert_eq!(v.payload_slice(), &payload[..]);
    }

    /// `vlan::push` of one 802.1Q tag onto an encap-built IPv4/UDP frame.
    #[test]
    fn ours_vlan_push_single(
        dst in arb_mac(),
        src in arb_mac(),
        ip in arb_v4(false),
        ports: (u16, u16),
        payload in vec(any::<u8>(), 0..40),
        tag in arb_tag(Tpid::Dot1Q),
    ) {
        let base = emit_v4_udp(dst, src, &ip, ports, &payload);
        let mut f = framed(&base, 8, 8);
        vlan::push(&mut f, tag).unwrap();
        let d = f.data();
        prop_assert_eq!(d.len(), base.len() + 4);
        let p = sliced(d);
        let eth = ep_eth(&p);
        prop_assert_eq!((eth.destination, eth.source), (dst.0, src.0));
        prop_assert_eq!(eth.ether_type, ep::EtherType::VLAN_TAGGED_FRAME);
        let Some(ep::VlanSlice::SingleVlan(v)) = &p.vlan else { panic!("{p:?}") };
        assert_ep_tag(&v.to_header(), &tag);
        prop_assert_eq!(v.ether_type(), ep::EtherType::IPV4);
        // The layers above the tag are untouched and still parse.
        let (h, _) = ep_ipv4(&p);
        assert_ep_ipv4(&h, &ip, 17, 8 + payload.len());
        let u = ep_udp(&p);
        prop_assert_eq!((u.source_port(), u.destination_port()), ports);
        prop_assert_eq!(u.payload(), &payload[..]);
        prop_assert_eq!(&d[18..], &base[14..]);
        // Our readers agree.
        prop_assert_eq!(vlan::outer_tag(d).unwrap(), Some(tag));
        let r = VlanRepr::parse(&vlan::Packet::new_checked(&d[14..]).unwrap()).unwrap();
        prop_assert_eq!((r.pcp, r.dei, r.vid, r.ethertype), (tag.pcp, tag.dei, tag.vid, EtherType::Ipv4));
    }

    /// QinQ by pushing a C-tag then an S-tag; then translate, pop, pop (with padding).
    #[test]
    fn ours_vlan_qinq_translate_pop(
        dst in arb_mac(),
        src in arb_mac(),
        ip in arb_v4(false),
        ports: (u16, u16),
        payload in vec(any::<u8>(), 0..40),
        ctag in arb_tag(Tpid::Dot1Q),
        stag in arb_tag(Tpid::Dot1Ad),
        new_vid in 1u16..=4094,
    ) {
        let base = emit_v4_udp(dst, src, &ip, ports, &payload);
        let mut f = framed(&base, 8, 64);
        vlan::push(&mut f, ctag).unwrap();
        vlan::push(&mut f, stag).unwrap();
        {
            let p = sliced(f.data());
            prop_assert_eq!(ep_eth(&p).ether_type, ep::EtherType::PROVIDER_BRIDGING);
            let Some(ep::VlanSlice::DoubleVlan(v)) = &p.vlan else { panic!("{p:?}") };
            let h = v.to_header();
            assert_ep_tag(&h.outer, &stag);
            assert_ep_tag(&h.inner, &ctag);
            prop_assert_eq!(h.outer.ether_type, ep::EtherType::VLAN_TAGGED_FRAME);
            prop_assert_eq!(h.inner.ether_type, ep::EtherType::IPV4);
            prop_assert_eq!(ep_udp(&p).payload(), &payload[..]);
            let l2 = parse::parse_l2(f.data()).unwrap();
            prop_assert_eq!(l2.tags, [Some(stag), Some(ctag)]);
            prop_assert_eq!(l2.l3_offset, 22);
        }
        // Translate the S-tag's VID: PCP and DEI stay.
        let new_vid = VlanId::try_new(new_vid).unwrap();
        prop_assert_eq!(vlan::translate(&mut f, new_vid).unwrap(), stag);
        let stag2 = VlanTag { vid: Some(new_vid), ..stag };
        {
            let p = sliced(f.data());
            let Some(ep::VlanSlice::DoubleVlan(v)) = &p.vlan else { panic!("{p:?}") };
            let h = v.to_header();
            assert_ep_tag(&h.outer, &stag2);
            assert_ep_tag(&h.inner, &ctag);
        }
        // Pop the S-tag: a single C-tagged frame remains.
        prop_assert_eq!(vlan::pop(&mut f).unwrap(), stag2);
        {
            let p = sliced(f.data());
            prop_assert_eq!(ep_eth(&p).ether_type, ep::EtherType::VLAN_TAGGED_FRAME);
            let Some(ep::VlanSlice::SingleVlan(v)) = &p.vlan else { panic!("{p:?}") };
            assert_ep_tag(&v.to_header(), &ctag);
        }
        // Pop the C-tag: the original frame, zero-padded to 60 bytes if shorter.
        prop_assert_eq!(vlan::pop(&mut f).unwrap(), ctag);
        let d = f.data();
        prop_assert_eq!(d.len(), base.len().max(60));
        prop_assert_eq!(&d[..base.len()], &base[..]);
        prop_assert!(d[base.len()..].iter().all(|&b| b == 0));
        let p = sliced(d);
        prop_assert!(p.vlan.is_none());
        let eth = ep_eth(&p);
        prop_assert_eq!((eth.destination, eth.source, eth.ether_type), (dst.0, src.0, ep::EtherType::IPV4));
        let (h, _) = ep_ipv4(&p);
        assert_ep_ipv4(&h, &ip, 17, 8 + payload.len());
        prop_assert_eq!(ep_udp(&p).payload(), &payload[..]);
    }

    #[test]
    fn ours_arp(
        dst in arb_mac(),
        src in arb_mac(),
        op: u16,
        sm in arb_mac(), si: [u8; 4], tm in arb_mac(), ti: [u8; 4],
        tag in prop::option::of(arb_tag(Tpid::Dot1Q)),
    ) {
        let repr = ArpRepr {
            operation: op.into(),
            sender_mac: sm,
            sender_ip: si.into(),
            target_mac: tm,
            target_ip: ti.into(),
        };
        let mut b = vec![0u8; 14 + arp::PACKET_LEN];
        EthernetRepr { dst, src, ethertype: EtherType::Arp }
            .emit(&mut ethernet::Packet::new_unchecked(&mut b[..]));
        repr.emit(&mut arp::Packet::new_unchecked(&mut b[14..]));
        let mut f = framed(&b, 4, 0);
        if let Some(t) = tag {
            vlan::push(&mut f, t).unwrap();
        }
        let d = f.data();
        let p = sliced(d);
        prop_assert_eq!(p.payload_ether_type(), Some(ep::EtherType::ARP));
        if let Some(t) = tag {
            let Some(ep::VlanSlice::SingleVlan(v)) = &p.vlan else { panic!("{p:?}") };
            assert_ep_tag(&v.to_header(), &t);
        }
        // etherparse 0.16 has no ARP parser: decode its ARP payload by hand (RFC 826).
        let a = p.ether_payload().unwrap().payload;
        prop_assert_eq!(a.len(), 28);
        prop_assert_eq!(be16(a, 0), ep::ArpHardwareId::ETHER.0);
        prop_assert_eq!(be16(a, 2), ep::EtherType::IPV4.0);
        prop_assert_eq!((a[4], a[5]), (6, 4));
        prop_assert_eq!(be16(a, 6), op);
        prop_assert_eq!(&a[8..14], &sm.0[..]);
        prop_assert_eq!(&a[14..18], &si[..]);
        prop_assert_eq!(&a[18..24], &tm.0[..]);
        prop_assert_eq!(&a[24..28], &ti[..]);
        let ours = parse::parse(d, 4789).unwrap();
        prop_assert_eq!(ours.l3, L3::Arp(repr));
    }

    /// IPv4 with options (and sometimes fragment fields) + UDP with checksum, sometimes
    /// followed by Ethernet padding.
    #[test]
    fn ours_ipv4_udp(
        dst in arb_mac(),
        src in arb_mac(),
        ip in arb_v4(true),
        ports in (any::<u16>(), any::<u16>().prop_filter("not VXLAN", |p| *p != 4789)),
        payload in vec(any::<u8>(), 0..300),
        pad in 0usize..20,
    ) {
        let mut b = emit_v4_udp(dst, src, &ip, ports, &payload);
        let ip_end = b.len();
        b.resize(ip_end + pad, 0);
        let hl = 20 + ip.options.len();
        let p = sliced(&b);
        let eth = ep_eth(&p);
        prop_assert_eq!((eth.destination, eth.source, eth.ether_type), (dst.0, src.0, ep::EtherType::IPV4));
        let (h, ipl) = ep_ipv4(&p);
        assert_ep_ipv4(&h, &ip, 17, 8 + payload.len());
        let fragmented = ip.mf || ip.frag_offset != 0;
        prop_assert_eq!(ipl.fragmented, fragmented);
        prop_assert_eq!(ipl.ip_number, ep::IpNumber::UDP);
        prop_assert_eq!(ipl.payload, &b[14 + hl..ip_end], "IP payload bounded by total length");
        let ours = parse::parse(&b, 4789).unwrap();
        prop_assert_eq!(ours.l3, L3::Ip {
            src: IpAddr::V4(ip.src.into()),
            dst: IpAddr::V4(ip.dst.into()),
            protocol: 17,
            l4_offset: if ip.frag_offset != 0 { 0 } else { 14 + hl },
            fragment: fragmented,
        });
        // Our Repr reads what etherparse reads.
        let ours_ip = Ipv4Repr::parse(&ipv4::Packet::new_checked(&b[14..]).unwrap()).unwrap();
        prop_assert_eq!(ours_ip, v4_repr(&ip, 17, 8 + payload.len()));
        if fragmented {
            prop_assert!(p.transport.is_none());
            prop_assert_eq!(ours.l4, L4::None);
            return Ok(());
        }
        let u = ep_udp(&p);
        let uh = u.to_header();
        prop_assert_eq!((uh.source_port, uh.destination_port), ports);
        prop_assert_eq!(usize::from(uh.length), 8 + payload.len());
        prop_assert_eq!(u.payload(), &payload[..]);
        prop_assert_eq!(offset_in(&b, u.slice()), 14 + hl);
        let calc = uh.calc_checksum_ipv4(&h, u.payload()).unwrap();
        prop_assert_eq!(uh.checksum, calc, "our UDP/IPv4 checksum differs from etherparse's");
        prop_assert_eq!(ours.l4, L4::Udp { src_port: ports.0, dst_port: ports.1 });
    }

    /// IPv6 with hop-by-hop / destination options / routing extension headers, then UDP
    /// with the (mandatory) checksum.
    #[test]
    fn ours_ipv6_ext_udp(
        dst in arb_mac(),
        src in arb_mac(),
        s6: [u8; 16], d6: [u8; 16],
        tc: u8, flow in 0u32..0x10_0000, hop: u8,
        hbh in prop::option::of((0usize..3).prop_flat_map(|k| vec(any::<u8>(), 6 + 8 * k))),
        dopt in prop::option::of((0usize..3).prop_flat_map(|k| vec(any::<u8>(), 6 + 8 * k))),
        rout in prop::option::of((0usize..3).prop_flat_map(|k| vec(any::<u8>(), 6 + 8 * k))),
        ports in (any::<u16>(), any::<u16>().prop_filter("not VXLAN", |p| *p != 4789)),
        payload in vec(any::<u8>(), 0..300),
        pad in 0usize..20,
    ) {
        // Extension headers in RFC 8200 order, each: next header, length in 8-octet
        // units not counting the first, body.
        let chain: Vec<(u8, Vec<u8>)> = [(ipv6::ext::HOP_BY_HOP, hbh), (ipv6::ext::DEST_OPTS, dopt), (ipv6::ext::ROUTING, rout)]
            .into_iter()
            .filter_map(|(t, body)| body.map(|b| (t, b)))
            .collect();
        let mut exts = Vec::new();
        for (i, (t, body)) in chain.iter().enumerate() {
            let next = chain.get(i + 1).map_or(17, |(t, _)| *t);
            exts.push(next);
            exts.push(((body.len() - 6) / 8) as u8);
            exts.extend_from_slice(body);
            if *t == ipv6::ext::ROUTING {
                // Segments left 0: a Routing header with segments left is refused.
                let at = exts.len() - body.len() + 1;
                exts[at] = 0;
            }
        }
        let first = chain.first().map_or(17, |(t, _)| *t);
        let udp_len = 8 + payload.len();
        let repr = Ipv6Repr {
            src: s6.into(),
            dst: d6.into(),
            next_header: first,
            payload_len: (exts.len() + udp_len) as u16,
            hop_limit: hop,
            traffic_class: tc,
            flow_label: flow,
        };
        let l4 = 14 + 40 + exts.len();
        let mut b = vec![0u8; l4 + udp_len];
        EthernetRepr { dst, src, ethertype: EtherType::Ipv6 }
            .emit(&mut ethernet::Packet::new_unchecked(&mut b[..]));
        repr.emit(&mut ipv6::Packet::new_unchecked(&mut b[14..]));
        b[54..l4].copy_from_slice(&exts);
        b[l4 + 8..].copy_from_slice(&payload);
        let mut u = udp::Packet::new_unchecked(&mut b[l4..]);
        UdpRepr { src_port: ports.0, dst_port: ports.1, payload_len: payload.len() as u16 }.emit(&mut u);
        u.fill_checksum_v6(&repr.src, &repr.dst);
        let ip_end = b.len();
        b.resize(ip_end + pad, 0);

        let p = sliced(&b);
        prop_assert_eq!(ep_eth(&p).ether_type, ep::EtherType::IPV6);
        let (h, ipl) = ep_ipv6(&p);
        prop_assert_eq!(h.source, s6);
        prop_assert_eq!(h.destination, d6);
        prop_assert_eq!(h.traffic_class, tc);
        prop_assert_eq!(h.flow_label.value(), flow);
        prop_assert_eq!(h.hop_limit, hop);
        prop_assert_eq!(h.next_header.0, first);
        prop_assert_eq!(usize::from(h.payload_length), exts.len() + udp_len);
        prop_assert_eq!(ipl.ip_number, ep::IpNumber::UDP);
        prop_assert!(!ipl.fragmented);
        // The extension headers etherparse found, in order, with their bytes.
        let Some(ep::NetSlice::Ipv6(s)) = &p.net else { unreachable!() };
        let found: Vec<(u8, Vec<u8>)> = s
            .extensions()
            .clone()
            .into_iter()
            .map(|e| match e {
                ep::Ipv6ExtensionSlice::HopByHop(x) => (0, x.slice().to_vec()),
                ep::Ipv6ExtensionSlice::DestinationOptions(x) => (60, x.slice().to_vec()),
                ep::Ipv6ExtensionSlice::Routing(x) => (43, x.slice().to_vec()),
                other => panic!("unexpected extension {other:?}"),
            })
            .collect();
        let mut at = 0;
        let expect: Vec<(u8, Vec<u8>)> = chain
            .iter()
            .map(|(t, body)| {
                let r = (*t, exts[at..at + 2 + body.len()].to_vec());
                at += 2 + body.len();
                r
            })
            .collect();
        prop_assert_eq!(found, expect);
        // UDP and its checksum.
        let us = ep_udp(&p);
        let uh = us.to_header();
        prop_assert_eq!((uh.source_port, uh.destination_port), ports);
        prop_assert_eq!(usize::from(uh.length), udp_len);
        prop_assert_eq!(us.payload(), &payload[..]);
        prop_assert_eq!(offset_in(&b, us.slice()), l4);
        let calc = uh.calc_checksum_ipv6(&h, us.payload()).unwrap();
        prop_assert_eq!(uh.checksum, calc, "our UDP/IPv6 checksum differs from etherparse's");
        // Our own walk finds the same upper layer.
        let ip6 = ipv6::Packet::new_checked(&b[14..]).unwrap();
        prop_assert_eq!(ip6.upper_layer().unwrap(), (17, 40 + exts.len()));
        prop_assert_eq!(Ipv6Repr::parse(&ip6).unwrap(), repr);
        let ours = parse::parse(&b, 4789).unwrap();
        prop_assert_eq!(ours.l3, L3::Ip {
            src: IpAddr::V6(s6.into()), dst: IpAddr::V6(d6.into()), protocol: 17, l4_offset: l4, fragment: false,
        });
        prop_assert_eq!(ours.l4, L4::Udp { src_port: ports.0, dst_port: ports.1 });
    }
}

/// Tunnel parameters for direction 1.
#[derive(Debug, Clone)]
struct Outer {
    smac: MacAddr,
    dmac: MacAddr,
    v6: bool,
    s4: [u8; 4],
    d4: [u8; 4],
    s6: [u8; 16],
    d6: [u8; 16],
    ttl: u8,
    tos: u8,
    df: bool,
}

fn arb_outer() -> impl Strategy<Value = Outer> {
    (
        arb_mac(),
        arb_mac(),
        any::<(bool, [u8; 4], [u8; 4], [u8; 16], [u8; 16])>(),
        any::<(u8, u8, bool)>(),
    )
        .prop_map(|(smac, dmac, (v6, s4, d4, s6, d6), (ttl, tos, df))| Outer {
            smac,
            dmac,
            v6,
            s4,
            d4,
            s6,
            d6,
            ttl,
            tos,
            df,
        })
}

impl Outer {
    fn params(&self) -> OuterParams {
        let mut p = if self.v6 {
            tunnel::v6_params(self.smac, self.dmac, self.s6.into(), self.d6.into())
        } else {
            tunnel::v4_params(self.smac, self.dmac, self.s4.into(), self.d4.into())
        };
        p.ttl = self.ttl;
        p.tos = self.tos;
        p.df = self.df;
        p
    }

    /// Checks etherparse's outer Ethernet and IP headers for an IP payload of `l4_len`
    /// bytes of protocol `proto`; returns the IP payload and, for IPv6, the header.
    fn check<'a>(
        &self,
        p: &ep::SlicedPacket<'a>,
        proto: u8,
        l4_len: usize,
        ip_id: u16,
    ) -> (ep::IpPayloadSlice<'a>, Option<ep::Ipv6Header>) {
        let eth = ep_eth(p);
        assert_eq!(eth.source, self.smac.0);
        assert_eq!(eth.destination, self.dmac.0);
        assert!(p.vlan.is_none());
        if self.v6 {
            assert_eq!(eth.ether_type, ep::EtherType::IPV6);
            let (h, pl) = ep_ipv6(p);
            assert_eq!(h.source, self.s6);
            assert_eq!(h.destination, self.d6);
            assert_eq!(h.traffic_class, self.tos);
            assert_eq!(h.flow_label.value(), 0);
            assert_eq!(h.hop_limit, self.ttl);
            assert_eq!(h.next_header.0, proto);
            assert_eq!(usize::from(h.payload_length), l4_len);
            (pl, Some(h))
        } else {
            assert_eq!(eth.ether_type, ep::EtherType::IPV4);
            let (h, pl) = ep_ipv4(p);
            let spec = V4Spec {
                src: self.s4,
                dst: self.d4,
                ttl: self.ttl,
                tos: self.tos,
                // RFC 6864: with DF set the ID is 0; without it, the caller's.
                ident: if self.df { 0 } else { ip_id },
                df: self.df,
                mf: false,
                frag_offset: 0,
                options: Vec::new(),
            };
            assert_ep_ipv4(&h, &spec, proto, l4_len);
            (pl, None)
        }
    }
}

proptest! {
    /// Whole output of `VxlanTemplate::encap` over IPv4 and IPv6.
    #[test]
    fn ours_vxlan_encap(
        o in arb_outer(),
        dport in prop_oneof![Just(4789u16), Just(8472), any::<u16>()],
        vni in 0u32..=Vni::MAX,
        hash: u32,
        ip_id: u16,
        inner in vec(any::<u8>(), 14..300),
    ) {
        let t = VxlanTemplate::new(&o.params(), dport).unwrap();
        let mut f = framed(&inner, 80, 0);
        t.encap(&mut f, Vni::try_new(vni).unwrap(), hash, ip_id).unwrap();
        let d = f.data();
        prop_assert_eq!(d.len(), inner.len() + if o.v6 { 70 } else { 50 });
        let p = sliced(d);
        let udp_len = 16 + inner.len();
        let (ipl, h6) = o.check(&p, 17, udp_len, ip_id);
        prop_assert_eq!(ipl.ip_number, ep::IpNumber::UDP);
        let u = ep_udp(&p);
        let uh = u.to_header();
        prop_assert_eq!(uh.source_port, tunnel::source_port(hash));
        prop_assert!(uh.source_port >= tunnel::SRC_PORT_MIN);
        prop_assert_eq!(uh.destination_port, dport);
        prop_assert_eq!(usize::from(uh.length), udp_len);
        match h6 {
            Some(h) => {
                let calc = uh.calc_checksum_ipv6(&h, u.payload()).unwrap();
                prop_assert_ne!(uh.checksum, 0, "UDP checksum is mandatory over IPv6");
                prop_assert_eq!(uh.checksum, calc, "VXLAN/IPv6 UDP checksum differs from etherparse's");
            }
            None => prop_assert_eq!(uh.checksum, 0, "VXLAN over IPv4 sends no UDP checksum"),
        }
        // VXLAN (RFC 7348 §5), decoded by hand: flags 0x08, reserved zero, VNI.
        let v = u.payload();
        let vb = vni.to_be_bytes();
        prop_assert_eq!(&v[..8], &[0x08, 0, 0, 0, vb[1], vb[2], vb[3], 0][..]);
        prop_assert_eq!(&v[8..], &inner[..]);
        // Our parser finds the VNI and the inner frame where etherparse's UDP payload is.
        let ours = parse::parse(d, dport).unwrap();
        prop_assert_eq!(ours.tunnel, Some(Tunnel::Vxlan {
            vni: Vni::try_new(vni).unwrap(),
            inner_offset: offset_in(d, v) + 8,
        }));
    }

    /// Whole output of `GreTemplate::encap`: etherparse checks up to IP, GRE decoded by hand.
    #[test]
    fn ours_gre_encap(
        o in arb_outer(),
        opts in any::<(bool, bool)>().prop_map(|(checksum, seq)| GreOptions { checksum, seq }),
        key: u32,
        seq: u32,
        ip_id: u16,
        inner in vec(any::<u8>(), 14..300),
    ) {
        let t = GreTemplate::new(&o.params(), opts).unwrap();
        let mut f = framed(&inner, 80, 0);
        t.encap(&mut f, GreKey::new(key), seq, ip_id).unwrap();
        let d = f.data().to_vec();
        let glen = 8 + 4 * usize::from(opts.checksum) + 4 * usize::from(opts.seq);
        prop_assert_eq!(t.overhead(), 14 + if o.v6 { 40 } else { 20 } + glen);
        let p = sliced(&d);
        let (ipl, _) = o.check(&p, 47, glen + inner.len(), ip_id);
        prop_assert_eq!(ipl.ip_number, ep::IpNumber::GRE);
        prop_assert!(p.transport.is_none());
        // GRE (RFC 2784 / 2890), decoded by hand.
        let g = ipl.payload;
        prop_assert_eq!(g.len(), glen + inner.len());
        let expect_flags = 0x2000 | if opts.checksum { 0x8000 } else { 0 } | if opts.seq { 0x1000 } else { 0 };
        prop_assert_eq!(be16(g, 0), expect_flags, "C/K/S bits, version 0, nothing else");
        prop_assert_eq!(be16(g, 2), 0x6558, "Transparent Ethernet Bridging");
        let mut at = 4;
        if opts.checksum {
            let mut zeroed = g.to_vec();
            zeroed[4..6].fill(0);
            prop_assert_eq!(be16(g, 4), ep_checksum(&zeroed), "GRE checksum differs from etherparse's sum");
            prop_assert_eq!(be16(g, 6), 0, "Reserved1");
            at += 4;
        }
        prop_assert_eq!(be32(g, at), key);
        at += 4;
        if opts.seq {
            prop_assert_eq!(be32(g, at), seq);
            at += 4;
        }
        prop_assert_eq!(at, glen);
        prop_assert_eq!(&g[glen..], &inner[..]);
        let ours = parse::parse(&d, 4789).unwrap();
        prop_assert_eq!(ours.tunnel, Some(Tunnel::Gre {
            key: Some(GreKey::new(key)),
            inner_offset: offset_in(&d, g) + glen,
        }));
        let info = tunnel::decap_gre(&mut f).unwrap();
        prop_assert_eq!((info.key, info.seq), (Some(GreKey::new(key)), opts.seq.then_some(seq)));
        prop_assert_eq!(f.data(), &inner[..]);
    }
}

// ---------------------------------------------------------------------------------------
// Direction 2: what etherparse builds, encap reads the same
// ---------------------------------------------------------------------------------------

fn arb_ep_vid() -> impl Strategy<Value = u16> {
    prop_oneof![1 => Just(0u16), 1 => Just(4095u16), 6 => 1u16..=4094]
}

fn arb_ep_tag(vid: BoxedStrategy<u16>) -> impl Strategy<Value = ep::SingleVlanHeader> {
    (0u8..8, any::<bool>(), vid).prop_map(|(pcp, dei, vid)| ep::SingleVlanHeader {
        pcp: ep::VlanPcp::try_new(pcp).unwrap(),
        drop_eligible_indicator: dei,
        vlan_id: ep::VlanId::try_new(vid).unwrap(),
        // Set by the builder.
        ether_type: ep::EtherType(0),
    })
}

fn arb_ep_vlan() -> impl Strategy<Value = Option<ep::VlanHeader>> {
    let tag = || arb_ep_tag(arb_ep_vid().boxed());
    prop_oneof![
        Just(None),
        tag().prop_map(|t| Some(ep::VlanHeader::Single(t))),
        (tag(), tag()).prop_map(|(outer, inner)| Some(ep::VlanHeader::Double(
            ep::DoubleVlanHeader { outer, inner }
        ))),
    ]
}

fn arb_ep_ipv4(fragments: bool) -> impl Strategy<Value = ep::Ipv4Header> {
    (
        any::<([u8; 4], [u8; 4], u8, u16, bool)>(),
        (0u8..64, 0u8..4),
        arb_v4(fragments).prop_map(|s| (s.mf, s.frag_offset, s.options)),
    )
        .prop_map(
            |((source, destination, ttl, ident, df), (dscp, ecn), (mf, off, opts))| {
                ep::Ipv4Header {
                    dscp: ep::Ipv4Dscp::try_new(dscp).unwrap(),
                    ecn: ep::Ipv4Ecn::try_new(ecn).unwrap(),
                    total_len: 0,
                    identification: ident,
                    dont_fragment: df,
                    more_fragments: mf,
                    fragment_offset: ep::IpFragOffset::try_new(off).unwrap(),
                    time_to_live: ttl,
                    protocol: ep::IpNumber::UDP,
                    header_checksum: 0,
                    source,
                    destination,
                    options: ep::Ipv4Options::try_from(&opts[..]).unwrap(),
                }
            },
        )
}

fn arb_raw_ext() -> impl Strategy<Value = ep::Ipv6RawExtHeader> {
    (0usize..3)
        .prop_flat_map(|k| vec(any::<u8>(), 6 + 8 * k))
        .prop_map(|body| ep::Ipv6RawExtHeader::new_raw(ep::IpNumber::UDP, &body).unwrap())
}

/// A Routing header this node would process: segments left 0 (RFC 8200 §4.4; with
/// segments left the packet is not for us and is refused).
fn arb_routing_ext() -> impl Strategy<Value = ep::Ipv6RawExtHeader> {
    (0usize..3)
        .prop_flat_map(|k| vec(any::<u8>(), 6 + 8 * k))
        .prop_map(|mut body| {
            body[1] = 0;
            ep::Ipv6RawExtHeader::new_raw(ep::IpNumber::UDP, &body).unwrap()
        })
}

fn arb_ep_ipv6(fragments: bool) -> impl Strategy<Value = (ep::Ipv6Header, ep::Ipv6Extensions)> {
    let frag = if fragments {
        prop::option::of(any::<(u16, bool, u32)>().prop_map(|(off, mf, id)| {
            ep::Ipv6FragmentHeader::new(
                ep::IpNumber::UDP,
                ep::IpFragOffset::try_new(off & 0x1fff).unwrap(),
                mf,
                id,
            )
        }))
        .boxed()
    } else {
        Just(None).boxed()
    };
    let auth = (
        any::<(u32, u32)>(),
        (0usize..4).prop_flat_map(|w| vec(any::<u8>(), 4 * w)),
    )
        .prop_map(|((spi, seq), icv)| {
            ep::IpAuthHeader::new(ep::IpNumber::UDP, spi, seq, &icv).unwrap()
        });
    (
        any::<([u8; 16], [u8; 16], u8, u8)>(),
        0u32..0x10_0000,
        prop::option::of(arb_raw_ext()),
        prop::option::of(arb_raw_ext()),
        prop::option::of((arb_routing_ext(), prop::option::of(arb_raw_ext()))),
        frag,
        prop::option::of(auth),
    )
        .prop_map(
            |((source, destination, tc, hop), flow, hbh, dest, routing, fragment, auth)| {
                (
                    ep::Ipv6Header {
                        traffic_class: tc,
                        flow_label: ep::Ipv6FlowLabel::try_new(flow).unwrap(),
                        payload_length: 0,
                        next_header: ep::IpNumber::UDP,
                        hop_limit: hop,
                        source,
                        destination,
                    },
                    ep::Ipv6Extensions {
                        hop_by_hop_options: hbh,
                        destination_options: dest,
                        routing: routing.map(|(routing, final_destination_options)| {
                            ep::Ipv6RoutingExtensions {
                                routing,
                                final_destination_options,
                            }
                        }),
                        fragment,
                        auth,
                    },
                )
            },
        )
}

fn arb_ep_ip(fragments: bool) -> impl Strategy<Value = ep::IpHeaders> {
    prop_oneof![
        arb_ep_ipv4(fragments).prop_map(|h| ep::IpHeaders::Ipv4(h, Default::default())),
        arb_ep_ipv6(fragments).prop_map(|(h, e)| ep::IpHeaders::Ipv6(h, e)),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    Udp(u16, u16),
    Tcp(u16, u16, u32, u16),
}

fn arb_transport() -> impl Strategy<Value = Transport> {
    let dport = any::<u16>().prop_filter("not VXLAN", |p| *p != 4789);
    prop_oneof![
        (any::<u16>(), dport).prop_map(|(s, d)| Transport::Udp(s, d)),
        any::<(u16, u16, u32, u16)>().prop_map(|(s, d, q, w)| Transport::Tcp(s, d, q, w)),
    ]
}

/// Our tag for etherparse's, or `None` for VID 4095, which we refuse.
fn our_tag(tpid: Tpid, h: &ep::SingleVlanHeader) -> Option<VlanTag> {
    let vid = h.vlan_id.value();
    if vid == 4095 {
        return None;
    }
    Some(VlanTag {
        tpid,
        pcp: Pcp::try_new(h.pcp.value()).unwrap(),
        dei: h.drop_eligible_indicator,
        vid: (vid != 0).then(|| VlanId::try_new(vid).unwrap()),
    })
}

/// Writes an outer Ethernet + IP (+ UDP) packet with etherparse around `payload`.
fn ep_build(
    smac: [u8; 6],
    dmac: [u8; 6],
    ip: ep::IpHeaders,
    udp_ports: Option<(u16, u16)>,
    raw_proto: ep::IpNumber,
    payload: &[u8],
) -> Vec<u8> {
    let b = ep::PacketBuilder::ethernet2(smac, dmac).ip(ip);
    let mut out = Vec::new();
    match udp_ports {
        Some((s, d)) => b.udp(s, d).write(&mut out, payload).unwrap(),
        None => b.write(&mut out, raw_proto, payload).unwrap(),
    }
    out
}

proptest! {
    /// Ethernet (+ 802.1Q / 802.1ad+802.1Q) + IPv4 (options, fragments) or IPv6 (extension
    /// headers) + UDP or TCP, all written by etherparse's PacketBuilder.
    #[test]
    fn theirs_packet_builder(
        smac: [u8; 6],
        dmac: [u8; 6],
        vlan in arb_ep_vlan(),
        ip in arb_ep_ip(true),
        tr in arb_transport(),
        payload in vec(any::<u8>(), 0..200),
    ) {
        let b = ep::PacketBuilder::ethernet2(smac, dmac);
        let b = match vlan.clone() {
            Some(v) => b.vlan(v).ip(ip.clone()),
            None => b.ip(ip.clone()),
        };
        let mut d = Vec::new();
        match tr {
            Transport::Udp(s, t) => b.udp(s, t).write(&mut d, &payload).unwrap(),
            Transport::Tcp(s, t, q, w) => b.tcp(s, t, q, w).write(&mut d, &payload).unwrap(),
        }
        // etherparse's own reading of what it wrote is the reference for offsets.
        let p = sliced(&d);

        // Layer 2: Ethernet view and tags.
        let eth = ethernet::Packet::new_checked(&d[..]).unwrap();
        prop_assert_eq!(eth.dst(), MacAddr(dmac));
        prop_assert_eq!(eth.src(), MacAddr(smac));
        prop_assert_eq!(u16::from(eth.ethertype()), ep_eth(&p).ether_type.0);
        let tags: Vec<(Tpid, ep::SingleVlanHeader)> = match &vlan {
            None => vec![],
            Some(ep::VlanHeader::Single(t)) => vec![(Tpid::Dot1Q, t.clone())],
            Some(ep::VlanHeader::Double(t)) => {
                vec![(Tpid::Dot1Ad, t.outer.clone()), (Tpid::Dot1Q, t.inner.clone())]
            }
        };
        for (i, (_, t)) in tags.iter().enumerate() {
            let v = vlan::Packet::new_checked(&d[14 + 4 * i..]).unwrap();
            prop_assert_eq!(v.pcp().get(), t.pcp.value());
            prop_assert_eq!(v.dei(), t.drop_eligible_indicator);
            prop_assert_eq!(v.vid_raw(), t.vlan_id.value());
        }
        let ours_tags: Option<Vec<VlanTag>> = tags.iter().map(|(tp, t)| our_tag(*tp, t)).collect();
        let Some(ours_tags) = ours_tags else {
            // VID 4095 is reserved (802.1Q): etherparse accepts it, we refuse it by design.
            let e = parse::parse(&d, 4789).unwrap_err();
            prop_assert_eq!((e.layer, e.kind), (Layer::Vlan, ErrorKind::BadValue));
            return Ok(());
        };
        let ours = parse::parse(&d, 4789).unwrap();
        let mut expect_tags = [None; 2];
        for (i, t) in ours_tags.iter().enumerate() {
            expect_tags[i] = Some(*t);
        }
        prop_assert_eq!(ours.l2.tags, expect_tags);
        prop_assert_eq!((ours.l2.dst, ours.l2.src), (MacAddr(dmac), MacAddr(smac)));
        let l3 = 14 + 4 * tags.len();
        prop_assert_eq!(ours.l2.l3_offset, l3);

        // Layer 3.
        let ipl = p.ip_payload().unwrap().clone();
        let (src, dst, protocol, fragment, l4_offset) = match &ip {
            ep::IpHeaders::Ipv4(_, _) => {
                let (h, _) = ep_ipv4(&p);
                prop_assert_eq!(ours.l2.ethertype, EtherType::Ipv4);
                let view = ipv4::Packet::new_checked(&d[l3..]).unwrap();
                prop_assert!(view.verify_checksum(), "etherparse's IPv4 checksum does not verify with ours");
                prop_assert_eq!(view.checksum(), h.header_checksum);
                prop_assert_eq!(view.options(), h.options.as_slice());
                let r = Ipv4Repr::parse(&view).unwrap();
                prop_assert_eq!(r.src.octets(), h.source);
                prop_assert_eq!(r.dst.octets(), h.destination);
                prop_assert_eq!(r.protocol, h.protocol.0);
                prop_assert_eq!(r.ttl, h.time_to_live);
                prop_assert_eq!(r.tos, h.dscp.value() << 2 | h.ecn.value());
                prop_assert_eq!(r.ident, h.identification);
                prop_assert_eq!((r.dont_frag, r.more_frags), (h.dont_fragment, h.more_fragments));
                prop_assert_eq!(r.frag_offset, h.fragment_offset.value());
                prop_assert_eq!(usize::from(r.payload_len), usize::from(h.total_len) - h.header_len());
                prop_assert_eq!(r.options(), h.options.as_slice());
                let frag = h.more_fragments || h.fragment_offset.value() != 0;
                prop_assert_eq!(frag, ipl.fragmented);
                let off = if h.fragment_offset.value() != 0 { 0 } else { l3 + h.header_len() };
                (IpAddr::V4(h.source.into()), IpAddr::V4(h.destination.into()), h.protocol.0, frag, off)
            }
            ep::IpHeaders::Ipv6(_, exts) => {
                let (h, _) = ep_ipv6(&p);
                prop_assert_eq!(ours.l2.ethertype, EtherType::Ipv6);
                let view = ipv6::Packet::new_checked(&d[l3..]).unwrap();
                let r = Ipv6Repr::parse(&view).unwrap();
                prop_assert_eq!(r.src.octets(), h.source);
                prop_assert_eq!(r.dst.octets(), h.destination);
                prop_assert_eq!(r.next_header, h.next_header.0);
                prop_assert_eq!(r.payload_len, h.payload_length);
                prop_assert_eq!(r.hop_limit, h.hop_limit);
                prop_assert_eq!(r.traffic_class, h.traffic_class);
                prop_assert_eq!(r.flow_label, h.flow_label.value());
                let ul = offset_in(&d, ipl.payload) - l3;
                if exts.fragment.is_some() {
                    // Any Fragment header — atomic fragments too, which etherparse reads
                    // through — is a fragment for us (tunnels never reassemble).
                    prop_assert_eq!(view.upper_layer().unwrap_err().kind, ErrorKind::Fragment);
                    (IpAddr::V6(h.source.into()), IpAddr::V6(h.destination.into()), 44, true, 0)
                } else {
                    prop_assert!(!ipl.fragmented);
                    prop_assert_eq!(view.upper_layer().unwrap(), (ipl.ip_number.0, ul));
                    (IpAddr::V6(h.source.into()), IpAddr::V6(h.destination.into()), ipl.ip_number.0, false, l3 + ul)
                }
            }
        };
        prop_assert_eq!(ours.l3, L3::Ip { src, dst, protocol, l4_offset, fragment });

        // Layer 4.
        if fragment {
            prop_assert_eq!(ours.l4, L4::None);
            return Ok(());
        }
        match (tr, &p.transport) {
            (Transport::Udp(s, t), Some(ep::TransportSlice::Udp(u))) => {
                prop_assert_eq!(offset_in(&d, u.slice()), l4_offset);
                prop_assert_eq!(ours.l4, L4::Udp { src_port: s, dst_port: t });
                let view = udp::Packet::new_checked(&d[l4_offset..]).unwrap();
                prop_assert_eq!(UdpRepr::parse(&view), UdpRepr { src_port: s, dst_port: t, payload_len: payload.len() as u16 });
                prop_assert_eq!(view.payload(), &payload[..]);
                prop_assert_eq!(view.checksum(), u.checksum());
                let ok = match (src, dst) {
                    (IpAddr::V4(a), IpAddr::V4(b)) => view.verify_checksum_v4(a, b),
                    (IpAddr::V6(a), IpAddr::V6(b)) => view.verify_checksum_v6(&a, &b),
                    _ => unreachable!(),
                };
                prop_assert!(ok, "etherparse's UDP checksum does not verify with ours");
            }
            (Transport::Tcp(s, t, _, _), Some(ep::TransportSlice::Tcp(u))) => {
                prop_assert_eq!(offset_in(&d, u.slice()), l4_offset);
                prop_assert_eq!(ours.l4, L4::Tcp { src_port: s, dst_port: t });
            }
            (tr, other) => panic!("{tr:?} vs etherparse {other:?}"),
        }
    }

    /// ARP (hand-written body; etherparse 0.16 cannot build ARP) behind etherparse-written
    /// Ethernet and 802.1Q headers.
    #[test]
    fn theirs_arp(
        smac: [u8; 6],
        dmac: [u8; 6],
        tag in prop::option::of(arb_ep_tag((1u16..=4094).boxed())),
        op: u16,
        sm: [u8; 6], si: [u8; 4], tm: [u8; 6], ti: [u8; 4],
    ) {
        let mut d = Vec::new();
        ep::Ethernet2Header {
            source: smac,
            destination: dmac,
            ether_type: if tag.is_some() { ep::EtherType::VLAN_TAGGED_FRAME } else { ep::EtherType::ARP },
        }
        .write(&mut d)
        .unwrap();
        if let Some(t) = &tag {
            ep::SingleVlanHeader { ether_type: ep::EtherType::ARP, ..t.clone() }.write(&mut d).unwrap();
        }
        d.extend_from_slice(&ep::ArpHardwareId::ETHER.0.to_be_bytes());
        d.extend_from_slice(&ep::EtherType::IPV4.0.to_be_bytes());
        d.extend_from_slice(&[6, 4]);
        d.extend_from_slice(&op.to_be_bytes());
        for part in [&sm[..], &si[..], &tm[..], &ti[..]] {
            d.extend_from_slice(part);
        }
        let ours = parse::parse(&d, 4789).unwrap();
        let expect = ArpRepr {
            operation: Operation::from(op),
            sender_mac: MacAddr(sm),
            sender_ip: si.into(),
            target_mac: MacAddr(tm),
            target_ip: ti.into(),
        };
        prop_assert_eq!(ours.l3, L3::Arp(expect));
        prop_assert_eq!(ours.l2.tags[0], tag.as_ref().and_then(|t| our_tag(Tpid::Dot1Q, t)));
        let a = arp::Packet::new_checked(&d[ours.l2.l3_offset..]).unwrap();
        prop_assert_eq!((a.hardware_type(), a.protocol_type()), (1, EtherType::Ipv4));
        prop_assert_eq!(u16::from(a.operation()), op);
    }

    /// VXLAN packets whose outer Ethernet/IP/UDP etherparse wrote (IPv6 with extension
    /// headers, UDP checksum always filled) decapsulate with ours; with outer IPv4
    /// options they are refused.
    #[test]
    fn theirs_vxlan_decap(
        smac: [u8; 6],
        dmac: [u8; 6],
        ip in arb_ep_ip(false),
        sport: u16,
        vni in 0u32..=Vni::MAX,
        reserved in prop_oneof![3 => Just([0u8; 5]), 1 => any::<[u8; 5]>()],
        inner_payload in vec(any::<u8>(), 0..100),
        corrupt in any::<prop::sample::Index>(),
    ) {
        let mut inner = Vec::new();
        ep::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1234, 80)
            .write(&mut inner, &inner_payload)
            .unwrap();
        // Flags: I plus any reserved flag bits; reserved fields from `reserved`.
        let vb = vni.to_be_bytes();
        let mut payload = vec![
            0x08 | (reserved[0] & !0x08), reserved[1], reserved[2], reserved[3],
            vb[1], vb[2], vb[3], reserved[4],
        ];
        payload.extend_from_slice(&inner);
        let d = ep_build(smac, dmac, ip.clone(), Some((sport, 4789)), ep::IpNumber::UDP, &payload);
        if d[12..14] == [0x08, 0x00] && d[14] & 0x0f != 5 {
            // Outer IPv4 options are refused (as OVS's native tunnels do).
            let e = tunnel::decap_vxlan(&mut framed(&d, 0, 0), &DecapConfig::default()).unwrap_err();
            prop_assert_eq!((e.layer, e.kind), (Layer::Ipv4, ErrorKind::Unsupported));
            return Ok(());
        }

        let cfg = DecapConfig::default();
        let mut f = framed(&d, 0, 0);
        let info = tunnel::decap_vxlan(&mut f, &cfg).unwrap();
        prop_assert_eq!(f.data(), &inner[..]);
        prop_assert_eq!(info.vni.get(), vni);
        prop_assert_eq!(info.src_port, sport);
        prop_assert_eq!((info.outer.src_mac(), info.outer.dst_mac()), (MacAddr(smac), MacAddr(dmac)));
        let (s, t, ttl, tos) = match &ip {
            ep::IpHeaders::Ipv4(h, _) => (
                IpAddr::V4(h.source.into()), IpAddr::V4(h.destination.into()),
                h.time_to_live, h.dscp.value() << 2 | h.ecn.value(),
            ),
            ep::IpHeaders::Ipv6(h, _) => (
                IpAddr::V6(h.source.into()), IpAddr::V6(h.destination.into()),
                h.hop_limit, h.traffic_class,
            ),
        };
        prop_assert_eq!((info.outer.src_ip(), info.outer.dst_ip()), (s, t));
        prop_assert_eq!((info.outer.ttl(), info.outer.tos()), (ttl, tos));
        // parse::parse agrees on where the inner frame starts.
        let ours = parse::parse(&d, 4789).unwrap();
        prop_assert_eq!(ours.tunnel, Some(Tunnel::Vxlan {
            vni: Vni::try_new(vni).unwrap(),
            inner_offset: d.len() - inner.len(),
        }));
        // Strict mode refuses exactly the packets with a reserved bit set.
        let reserved_set = reserved != [0; 5] && (reserved[0] & !0x08 != 0 || reserved[1..] != [0; 4]);
        let strict = DecapConfig { strict_reserved: true, ..cfg };
        let r = tunnel::decap_vxlan(&mut framed(&d, 0, 0), &strict);
        prop_assert_eq!(r.is_err(), reserved_set);
        // A flipped bit anywhere in the UDP datagram breaks the checksum etherparse wrote.
        let udp_start = d.len() - payload.len() - 8;
        let i = udp_start + corrupt.index(d.len() - udp_start);
        let mut bad = d.clone();
        bad[i] ^= 0x01;
        // (A flipped destination port is "not VXLAN", a flipped length a bad length.)
        if !(udp_start + 2..udp_start + 6).contains(&i) {
            let e = tunnel::decap_vxlan(&mut framed(&bad, 0, 0), &cfg).unwrap_err();
            prop_assert_eq!((e.layer, e.kind), (Layer::Udp, ErrorKind::BadChecksum), "byte {}", i);
        }
    }

    /// GRE packets (hand-written GRE header, checksum from etherparse's checksum code)
    /// inside etherparse-written Ethernet/IP decapsulate with ours.
    #[test]
    fn theirs_gre_decap(
        smac: [u8; 6],
        dmac: [u8; 6],
        ip in arb_ep_ip(false),
        c: bool,
        key in prop::option::of(any::<u32>()),
        seq in prop::option::of(any::<u32>()),
        inner in vec(any::<u8>(), 14..200),
        corrupt in any::<prop::sample::Index>(),
    ) {
        let flags: u16 = if c { 0x8000 } else { 0 } | if key.is_some() { 0x2000 } else { 0 } | if seq.is_some() { 0x1000 } else { 0 };
        let mut g = Vec::new();
        g.extend_from_slice(&flags.to_be_bytes());
        g.extend_from_slice(&0x6558u16.to_be_bytes());
        if c {
            g.extend_from_slice(&[0; 4]);
        }
        if let Some(k) = key {
            g.extend_from_slice(&k.to_be_bytes());
        }
        if let Some(s) = seq {
            g.extend_from_slice(&s.to_be_bytes());
        }
        let glen = g.len();
        g.extend_from_slice(&inner);
        if c {
            let sum = ep_checksum(&g);
            g[4..6].copy_from_slice(&sum.to_be_bytes());
        }
        let d = ep_build(smac, dmac, ip, None, ep::IpNumber::GRE, &g);
        if d[12..14] == [0x08, 0x00] && d[14] & 0x0f != 5 {
            // Outer IPv4 options are refused (as OVS's native tunnels do).
            let e = tunnel::decap_gre(&mut framed(&d, 0, 0)).unwrap_err();
            prop_assert_eq!((e.layer, e.kind), (Layer::Ipv4, ErrorKind::Unsupported));
            return Ok(());
        }
        let p = sliced(&d);
        prop_assert_eq!(p.ip_payload().unwrap().ip_number, ep::IpNumber::GRE);
        let mut f = framed(&d, 0, 0);
        let info = tunnel::decap_gre(&mut f).unwrap();
        prop_assert_eq!(f.data(), &inner[..]);
        prop_assert_eq!(info.key, key.map(GreKey::new));
        prop_assert_eq!(info.seq, seq);
        let ours = parse::parse(&d, 4789).unwrap();
        prop_assert_eq!(ours.tunnel, Some(Tunnel::Gre { key: key.map(GreKey::new), inner_offset: d.len() - inner.len() }));
        if c {
            // One flipped bit after the flags word breaks the GRE checksum.
            let g0 = d.len() - inner.len() - glen;
            let i = g0 + 4 + corrupt.index(d.len() - g0 - 4);
            let mut bad = d.clone();
            bad[i] ^= 0x10;
            let e = tunnel::decap_gre(&mut framed(&bad, 0, 0)).unwrap_err();
            prop_assert_eq!((e.layer, e.kind), (Layer::Gre, ErrorKind::BadChecksum));
        }
    }
}

/// TPID 0x9100 (pre-standard QinQ): etherparse reads it as a VLAN tag; encap treats only
/// 0x8100 and 0x88a8 as tags, so for us it is an unknown EtherType (by design).
#[test]
fn tpid_9100_is_not_a_tag_for_us() {
    let mut d = Vec::new();
    ep::Ethernet2Header {
        source: [2, 0, 0, 0, 0, 1],
        destination: [2, 0, 0, 0, 0, 2],
        ether_type: ep::EtherType::VLAN_DOUBLE_TAGGED_FRAME,
    }
    .write(&mut d)
    .unwrap();
    ep::SingleVlanHeader {
        pcp: ep::VlanPcp::ZERO,
        drop_eligible_indicator: false,
        vlan_id: ep::VlanId::try_new(7).unwrap(),
        ether_type: ep::EtherType(0x88b5),
    }
    .write(&mut d)
    .unwrap();
    assert!(matches!(
        sliced(&d).vlan,
        Some(ep::VlanSlice::SingleVlan(_))
    ));
    let l2 = parse::parse_l2(&d).unwrap();
    assert_eq!(l2.tag_count(), 0);
    assert_eq!(l2.ethertype, EtherType::Unknown(0x9100));
    assert_eq!(l2.l3_offset, 14);
}

/// The well-known IPv4 header of RFC 1071 examples: both implementations give b861.
#[test]
fn ipv4_checksum_known_value() {
    let mut r = Ipv4Repr::new(
        Ipv4Addr::new(192, 168, 0, 1),
        Ipv4Addr::new(192, 168, 0, 199),
        17,
        0x73 - 20,
    );
    r.ttl = 64;
    let mut b = [0u8; 20];
    r.emit(&mut ipv4::Packet::new_unchecked(&mut b[..]));
    let (h, _) = ep::Ipv4Header::from_slice(&b).unwrap();
    assert_eq!(h.header_checksum, 0xb861);
    assert_eq!(h.calc_header_checksum(), 0xb861);
}

/// Every checksum of a small datagram whose last payload word sweeps all 65536 values
/// equals etherparse's, including the one datagram whose checksum computes to zero: it is
/// sent as 0xffff (RFC 768), as etherparse does, and still verifies.
#[test]
fn udp_checksum_sweep_and_zero_case() {
    let (s4, d4) = ([198, 18, 0, 1], [198, 18, 0, 2]);
    let (s6, d6) = (
        [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0xfe; 16],
    );
    for v6 in [false, true] {
        let mut zero_case = 0;
        for w in 0..=0xffffu16 {
            let mut b = [0u8; 14];
            b[8..12].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
            b[12..].copy_from_slice(&w.to_be_bytes());
            let mut u = udp::Packet::new_unchecked(&mut b[..]);
            UdpRepr {
                src_port: 4789,
                dst_port: 49153,
                payload_len: 6,
            }
            .emit(&mut u);
            if v6 {
                u.fill_checksum_v6(&s6.into(), &d6.into());
            } else {
                u.fill_checksum_v4(s4.into(), d4.into());
            }
            let (h, payload) = ep::UdpHeader::from_slice(&b).unwrap();
            let theirs = if v6 {
                h.calc_checksum_ipv6_raw(s6, d6, payload).unwrap()
            } else {
                h.calc_checksum_ipv4_raw(s4, d4, payload).unwrap()
            };
            assert_eq!(h.checksum, theirs, "v6 {v6}, word {w:#06x}");
            let p = udp::Packet::new_checked(&b[..]).unwrap();
            let ok = if v6 {
                p.verify_checksum_v6(&s6.into(), &d6.into())
            } else {
                p.verify_checksum_v4(s4.into(), d4.into())
            };
            assert!(ok, "v6 {v6}, word {w:#06x}");
            if theirs == 0xffff {
                zero_case += 1;
            }
        }
        assert_eq!(zero_case, 1, "exactly one word makes the sum zero");
    }
}

/// IPv4 header checksums for every identification value (the field VXLAN/GRE encap patch
/// incrementally when DF is clear) equal etherparse's, with and without options.
#[test]
fn ipv4_encap_checksum_sweep() {
    for df in [false, true] {
        let mut p = tunnel::v4_params(
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
        );
        p.df = df;
        p.tos = 0xb8;
        p.ttl = 1;
        let t = VxlanTemplate::new(&p, 4789).unwrap();
        let inner = [0x5au8; 60];
        for id in 0..=0xffffu16 {
            let mut f = framed(&inner, 50, 0);
            t.encap(&mut f, Vni::try_new(1).unwrap(), 0, id).unwrap();
            let (h, _) = ep::Ipv4Header::from_slice(&f.data()[14..]).unwrap();
            assert_eq!(h.identification, if df { 0 } else { id });
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "id {id:#06x}");
            if df {
                break;
            }
        }
    }
}
