//! Neighbour-resolution frames: ARP (RFC 826) and IPv6 Neighbor Discovery (RFC 4861),
//! written whole into a caller's buffer, and the l2population ARP responder.
//!
//! The underlay resolves its VTEPs and gateway and answers for its own address with these;
//! br-tun's ARP responder (Neutron table 21) turns a tenant's ARP request into a reply
//! with [`arp_responder`] / [`arp_responder_in_place`]. Nothing allocates: every builder
//! writes into `out` and returns the frame's length, or an [`ErrorKind::Truncated`] error
//! (naming the layer and the size needed) when `out` is too short.
//!
//! ARP frames are zero-padded to [`ETH_ZLEN`] (60 bytes, what appears on the wire); ND
//! frames are longer than that already (86 bytes with the link-layer address option).

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::arp::{self, ArpRepr, Operation};
use crate::error::{Error, ErrorKind, Layer};
use crate::ethernet::{self, EtherType, EthernetRepr};
use crate::icmpv6::{self, NaFlags, NdRepr};
use crate::ipv6::{self, Ipv6Repr};
use crate::types::MacAddr;
use crate::{ETH_HLEN, ETH_ZLEN};

/// Length of every ARP frame built here (padded to the Ethernet minimum).
pub const ARP_FRAME_LEN: usize = ETH_ZLEN;
/// Length of an NS or NA frame with its link-layer address option.
pub const ND_FRAME_LEN: usize =
    ETH_HLEN + ipv6::HEADER_LEN + icmpv6::HEADER_LEN + icmpv6::LLADDR_OPT_LEN;

fn room(out: &[u8], need: usize, layer: Layer) -> Result<(), Error> {
    if out.len() < need {
        return Err(Error::truncated(layer, need, out.len()));
    }
    Ok(())
}

fn arp_frame(
    out: &mut [u8],
    eth_dst: MacAddr,
    eth_src: MacAddr,
    a: &ArpRepr,
) -> Result<usize, Error> {
    room(out, ARP_FRAME_LEN, Layer::Arp)?;
    let out = &mut out[..ARP_FRAME_LEN];
    EthernetRepr {
        dst: eth_dst,
        src: eth_src,
        ethertype: EtherType::Arp,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut out[..]));
    let (body, pad) = out[ETH_HLEN..].split_at_mut(arp::PACKET_LEN);
    a.emit(&mut arp::Packet::new_unchecked(body));
    pad.fill(0);
    Ok(ARP_FRAME_LEN)
}

/// An ARP request "who has `target`, tell `our_ip`", broadcast.
pub fn arp_request(
    out: &mut [u8],
    our_mac: MacAddr,
    our_ip: Ipv4Addr,
    target: Ipv4Addr,
) -> Result<usize, Error> {
    let a = ArpRepr {
        operation: Operation::Request,
        sender_mac: our_mac,
        sender_ip: our_ip,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    };
    arp_frame(out, MacAddr::BROADCAST, our_mac, &a)
}

/// An ARP reply "`our_ip` is at `our_mac`" to the asker (`to_mac`, `to_ip`), unicast to
/// `to_mac`.
pub fn arp_reply(
    out: &mut [u8],
    our_mac: MacAddr,
    our_ip: Ipv4Addr,
    to_mac: MacAddr,
    to_ip: Ipv4Addr,
) -> Result<usize, Error> {
    let a = ArpRepr {
        operation: Operation::Reply,
        sender_mac: our_mac,
        sender_ip: our_ip,
        target_mac: to_mac,
        target_ip: to_ip,
    };
    arp_frame(out, to_mac, our_mac, &a)
}

/// A gratuitous ARP announcing `our_ip` at `our_mac`: a broadcast request with sender and
/// target address both `our_ip` and a zero target MAC (the RFC 5227 §3 announcement,
/// which switches and hosts update their tables from).
pub fn gratuitous_arp(out: &mut [u8], our_mac: MacAddr, our_ip: Ipv4Addr) -> Result<usize, Error> {
    arp_request(out, our_mac, our_ip, our_ip)
}

/// Ethernet + IPv6 (hop limit 255, next header ICMPv6) + `nd`, checksum filled.
fn nd_frame(
    out: &mut [u8],
    eth_dst: MacAddr,
    eth_src: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nd: &NdRepr,
) -> Result<usize, Error> {
    let len = ETH_HLEN + ipv6::HEADER_LEN + nd.buffer_len();
    room(out, len, Layer::Icmpv6)?;
    let out = &mut out[..len];
    EthernetRepr {
        dst: eth_dst,
        src: eth_src,
        ethertype: EtherType::Ipv6,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut out[..]));
    let (ip, msg) = out[ETH_HLEN..].split_at_mut(ipv6::HEADER_LEN);
    Ipv6Repr {
        src,
        dst,
        next_header: icmpv6::NEXT_HEADER,
        payload_len: nd.buffer_len() as u16,
        hop_limit: icmpv6::ND_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut ipv6::Packet::new_unchecked(ip));
    nd.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(msg));
    Ok(len)
}

/// A Neighbor Solicitation for `target` from `our_ip`, with our Source Link-Layer Address,
/// to the target's solicited-node multicast address (ff02::1:ffXX:XXXX, Ethernet
/// 33:33:ff:XX:XX:XX).
pub fn nd_solicit(
    out: &mut [u8],
    our_mac: MacAddr,
    our_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Result<usize, Error> {
    let dst = icmpv6::solicited_node(&target);
    let nd = NdRepr::Solicit {
        target,
        source_mac: Some(our_mac),
    };
    nd_frame(out, icmpv6::multicast_mac(&dst), our_mac, our_ip, dst, &nd)
}

/// A Neighbor Advertisement for `our_ip` at `our_mac` (Target Link-Layer Address option,
/// Override set) answering a solicitation from `to` = (its IPv6 source, the MAC to send
/// to), with Solicited set; or, when the solicitation came from the unspecified address
/// (`to` is `None`: duplicate address detection), to all nodes (ff02::1) with Solicited
/// clear, as RFC 4861 §7.2.4 requires.
pub fn nd_advert(
    out: &mut [u8],
    our_mac: MacAddr,
    our_ip: Ipv6Addr,
    to: Option<(Ipv6Addr, MacAddr)>,
) -> Result<usize, Error> {
    let (dst, eth_dst) = match to {
        Some((ip, mac)) if !ip.is_unspecified() => (ip, mac),
        _ => (icmpv6::ALL_NODES, icmpv6::multicast_mac(&icmpv6::ALL_NODES)),
    };
    let nd = NdRepr::Advert {
        flags: NaFlags {
            router: false,
            solicited: !dst.is_multicast(),
            override_: true,
        },
        target: our_ip,
        target_mac: Some(our_mac),
    };
    nd_frame(out, eth_dst, our_mac, our_ip, dst, &nd)
}

/// Checks `frame` is an untagged Ethernet/IPv4 ARP request from a unicast sender and
/// returns it parsed. Refusals: a short frame ([`ErrorKind::Truncated`]), another
/// EtherType, tagged frames included ([`ErrorKind::NotMatched`] at the Ethernet layer),
/// another hardware/protocol type ([`ErrorKind::Unsupported`]), another operation
/// ([`ErrorKind::NotMatched`]), a multicast or zero Ethernet source or sender MAC
/// ([`ErrorKind::BadValue`]: there is nobody to answer).
pub fn arp_request_of(frame: &[u8]) -> Result<ArpRepr, Error> {
    let eth = ethernet::Packet::new_checked(frame)?;
    if eth.ethertype() != EtherType::Arp {
        return Err(Error::new(Layer::Ethernet, ErrorKind::NotMatched));
    }
    let a = ArpRepr::parse(&arp::Packet::new_checked(eth.payload())?)?;
    if a.operation != Operation::Request {
        return Err(Error::new(Layer::Arp, ErrorKind::NotMatched));
    }
    if !eth.src().is_unicast() || !a.sender_mac.is_unicast() {
        return Err(Error::new(Layer::Arp, ErrorKind::BadValue));
    }
    Ok(a)
}

/// The l2population ARP responder (Neutron br-tun table 21): rewrites the ARP request in
/// `frame` (untagged, as the pipeline holds it after popping the local VLAN) into the
/// reply that `answer` owns the requested address, in place. The frame keeps its length
/// (and any padding). Fields, as Neutron's flow sets them: Ethernet destination = the
/// request's Ethernet source, Ethernet source = `answer`, operation reply, sender MAC =
/// `answer`, sender IP = the requested IP, target MAC = the request's sender MAC, target
/// IP = the request's sender IP. The caller looks the requested IP (the `target_ip` of
/// [`arp_request_of`]) up first. Refusals as [`arp_request_of`]; a refused frame is left
/// untouched.
pub fn arp_responder_in_place(frame: &mut [u8], answer: MacAddr) -> Result<usize, Error> {
    let req = arp_request_of(frame)?;
    let requester = MacAddr::try_from_slice(&frame[6..]).unwrap_or(req.sender_mac);
    let mut eth = ethernet::Packet::new_unchecked(&mut frame[..]);
    eth.set_dst(requester);
    eth.set_src(answer);
    ArpRepr {
        operation: Operation::Reply,
        sender_mac: answer,
        sender_ip: req.target_ip,
        target_mac: req.sender_mac,
        target_ip: req.sender_ip,
    }
    .emit(&mut arp::Packet::new_unchecked(eth.payload_mut()));
    Ok(frame.len())
}

/// [`arp_responder_in_place`] into `out`, leaving the request as it is: the reply is a
/// fresh [`ARP_FRAME_LEN`]-byte frame.
pub fn arp_responder(request: &[u8], answer: MacAddr, out: &mut [u8]) -> Result<usize, Error> {
    let req = arp_request_of(request)?;
    let eth = ethernet::Packet::new_unchecked(request);
    let a = ArpRepr {
        operation: Operation::Reply,
        sender_mac: answer,
        sender_ip: req.target_ip,
        target_mac: req.sender_mac,
        target_ip: req.sender_ip,
    };
    arp_frame(out, eth.src(), answer, &a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmpv6::Packet as NdPacket;
    use proptest::prelude::*;

    const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const OUR4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const PEER4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const OUR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    const GOLDEN_ARP_REQUEST: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, // eth
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // ethernet/ipv4, request
        0x02, 0, 0, 0, 0, 0x01, 198, 18, 0, 1, // sender
        0, 0, 0, 0, 0, 0, 198, 18, 0, 2, // target
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    const GOLDEN_ARP_REPLY: [u8; 60] = [
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, // eth
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02, // ethernet/ipv4, reply
        0x02, 0, 0, 0, 0, 0x01, 198, 18, 0, 1, // sender
        0x02, 0, 0, 0, 0, 0x02, 198, 18, 0, 2, // target
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    /// NS for 2001:db8::2 from 2001:db8::1: the ICMPv6 part is the golden message of
    /// `icmpv6::tests` with the same checksum.
    fn golden_ns() -> Vec<u8> {
        let mut v = vec![
            0x33, 0x33, 0xff, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd,
        ];
        v.extend_from_slice(&[0x60, 0, 0, 0, 0, 32, 58, 255]);
        v.extend_from_slice(&OUR6.octets());
        v.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0x02]);
        v.extend_from_slice(&[135, 0, 0x1c, 0x27, 0, 0, 0, 0]);
        v.extend_from_slice(&PEER6.octets());
        v.extend_from_slice(&[1, 1, 0x02, 0, 0, 0, 0, 0x01]);
        v
    }

    #[test]
    fn golden_arp_request_and_reply() {
        let mut b = [0xaau8; 64];
        assert_eq!(arp_request(&mut b, OUR_MAC, OUR4, PEER4), Ok(60));
        assert_eq!(b[..60], GOLDEN_ARP_REQUEST);
        assert_eq!(arp_reply(&mut b, OUR_MAC, OUR4, PEER_MAC, PEER4), Ok(60));
        assert_eq!(b[..60], GOLDEN_ARP_REPLY);
        assert_eq!(gratuitous_arp(&mut b, OUR_MAC, OUR4), Ok(60));
        let a = ArpRepr::parse(&arp::Packet::new_checked(&b[14..42]).unwrap()).unwrap();
        assert_eq!((a.sender_ip, a.target_ip), (OUR4, OUR4));
        assert_eq!(a.target_mac, MacAddr::ZERO);
        assert_eq!(b[..6], [0xff; 6]);
    }

    #[test]
    fn golden_ns_frame() {
        let mut b = [0u8; ND_FRAME_LEN];
        assert_eq!(nd_solicit(&mut b, OUR_MAC, OUR6, PEER6), Ok(86));
        assert_eq!(b.to_vec(), golden_ns());
    }

    /// Parses an ND frame built here: Ethernet, IPv6, the NdRepr.
    fn parse_nd(b: &[u8]) -> (ethernet::Packet<&[u8]>, Ipv6Repr, NdRepr) {
        let eth = ethernet::Packet::new_checked(b).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Ipv6);
        let ip = ipv6::Packet::new_checked(&b[14..]).unwrap();
        let r = Ipv6Repr::parse(&ip).unwrap();
        assert_eq!(ip.upper_layer().unwrap(), (58, 40));
        let nd = NdRepr::parse(&r, &NdPacket::new_checked(ip.payload()).unwrap()).unwrap();
        (eth, r, nd)
    }

    #[test]
    fn na_answers_to_source_or_all_nodes() {
        let mut b = [0u8; 100];
        let n = nd_advert(&mut b, OUR_MAC, OUR6, Some((PEER6, PEER_MAC))).unwrap();
        assert_eq!(n, ND_FRAME_LEN);
        let (eth, ip, nd) = parse_nd(&b[..n]);
        assert_eq!((eth.dst(), eth.src()), (PEER_MAC, OUR_MAC));
        assert_eq!((ip.src, ip.dst, ip.hop_limit), (OUR6, PEER6, 255));
        let flags = NaFlags {
            router: false,
            solicited: true,
            override_: true,
        };
        assert_eq!(
            nd,
            NdRepr::Advert {
                flags,
                target: OUR6,
                target_mac: Some(OUR_MAC)
            }
        );
        // DAD: to all nodes, not solicited.
        for to in [None, Some((Ipv6Addr::UNSPECIFIED, PEER_MAC))] {
            let n = nd_advert(&mut b, OUR_MAC, OUR6, to).unwrap();
            let (eth, ip, nd) = parse_nd(&b[..n]);
            assert_eq!(eth.dst(), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
            assert_eq!(ip.dst, icmpv6::ALL_NODES);
            let NdRepr::Advert { flags, .. } = nd else {
                panic!("not an NA")
            };
            assert!(!flags.solicited && flags.override_);
        }
    }

    #[test]
    fn short_buffers_are_refused() {
        let mut b = [0u8; 59];
        assert_eq!(
            arp_request(&mut b, OUR_MAC, OUR4, PEER4),
            Err(Error::truncated(Layer::Arp, 60, 59))
        );
        let mut b = [0u8; 85];
        assert_eq!(
            nd_solicit(&mut b, OUR_MAC, OUR6, PEER6),
            Err(Error::truncated(Layer::Icmpv6, 86, 85))
        );
        assert!(nd_advert(&mut b, OUR_MAC, OUR6, None).is_err());
        assert!(arp_responder(&GOLDEN_ARP_REQUEST, PEER_MAC, &mut [0u8; 10]).is_err());
    }

    #[test]
    fn responder_golden() {
        // The request of GOLDEN_ARP_REQUEST, asked of the table for 198.18.0.2.
        let answer = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 0x02]);
        let mut want = [0u8; 60];
        want[..14].copy_from_slice(&[
            0x02, 0, 0, 0, 0, 0x01, 0xfa, 0x16, 0x3e, 0, 0, 0x02, 0x08, 0x06,
        ]);
        want[14..42].copy_from_slice(&[
            0, 1, 8, 0, 6, 4, 0, 2, // reply
            0xfa, 0x16, 0x3e, 0, 0, 0x02, 198, 18, 0, 2, // the answer
            0x02, 0, 0, 0, 0, 0x01, 198, 18, 0, 1, // the requester
        ]);
        let mut out = [0u8; 64];
        assert_eq!(arp_responder(&GOLDEN_ARP_REQUEST, answer, &mut out), Ok(60));
        assert_eq!(out[..60], want);
        let mut f = GOLDEN_ARP_REQUEST;
        assert_eq!(arp_responder_in_place(&mut f, answer), Ok(60));
        assert_eq!(f, want);
        // A 42-byte request stays 42 bytes.
        let mut f = GOLDEN_ARP_REQUEST[..42].to_vec();
        assert_eq!(arp_responder_in_place(&mut f, answer), Ok(42));
        assert_eq!(f[..], want[..42]);
    }

    #[test]
    fn responder_refusals() {
        let answer = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 0x02]);
        let kind = |f: &[u8]| {
            let mut g = f.to_vec();
            let e = arp_responder_in_place(&mut g, answer).unwrap_err();
            assert_eq!(g, f, "a refused frame is left untouched");
            (e.layer, e.kind)
        };
        assert_eq!(kind(&GOLDEN_ARP_REPLY), (Layer::Arp, ErrorKind::NotMatched));
        let mut f = GOLDEN_ARP_REQUEST;
        f[12..14].copy_from_slice(&[0x81, 0x00]); // tagged
        assert_eq!(kind(&f), (Layer::Ethernet, ErrorKind::NotMatched));
        let mut f = GOLDEN_ARP_REQUEST;
        f[15] = 6; // IEEE 802 hardware
        assert_eq!(kind(&f), (Layer::Arp, ErrorKind::Unsupported));
        let mut f = GOLDEN_ARP_REQUEST;
        f[6] |= 1; // multicast source
        assert_eq!(kind(&f), (Layer::Arp, ErrorKind::BadValue));
        let mut f = GOLDEN_ARP_REQUEST;
        f[22..28].fill(0); // zero sender MAC
        assert_eq!(kind(&f), (Layer::Arp, ErrorKind::BadValue));
        assert!(matches!(
            kind(&GOLDEN_ARP_REQUEST[..41]),
            (Layer::Arp, ErrorKind::Truncated { .. })
        ));
        assert!(matches!(
            kind(&GOLDEN_ARP_REQUEST[..13]),
            (Layer::Ethernet, ErrorKind::Truncated { .. })
        ));
    }

    fn arb_mac() -> impl Strategy<Value = MacAddr> {
        any::<[u8; 6]>().prop_map(|mut m| {
            m[0] &= 0xfe;
            m[5] |= 1;
            MacAddr(m)
        })
    }

    proptest! {
        /// Request → responder → the reply parses back to the swapped fields, and the
        /// out-of-place and in-place forms agree.
        #[test]
        fn responder_roundtrip(a in arb_mac(), b in arb_mac(), ai: [u8; 4], ti: [u8; 4]) {
            let (ai, ti) = (Ipv4Addr::from(ai), Ipv4Addr::from(ti));
            let mut req = [0u8; 60];
            arp_request(&mut req, a, ai, ti).unwrap();
            let mut out = [0u8; 60];
            prop_assert_eq!(arp_responder(&req, b, &mut out), Ok(60));
            let mut inplace = req;
            prop_assert_eq!(arp_responder_in_place(&mut inplace, b), Ok(60));
            prop_assert_eq!(out, inplace);
            let mut want = [0u8; 60];
            arp_reply(&mut want, b, ti, a, ai).unwrap();
            prop_assert_eq!(out, want);
        }

        #[test]
        fn nd_builders_parse_back(a in arb_mac(), b in arb_mac(), s: [u8; 16], t: [u8; 16]) {
            let (s, t) = (Ipv6Addr::from(s), Ipv6Addr::from(t));
            prop_assume!(!t.is_multicast() && !s.is_multicast() && !s.is_unspecified());
            let mut f = [0u8; ND_FRAME_LEN];
            nd_solicit(&mut f, a, s, t).unwrap();
            let (eth, ip, nd) = parse_nd(&f);
            prop_assert_eq!(eth.dst(), icmpv6::multicast_mac(&icmpv6::solicited_node(&t)));
            prop_assert_eq!(ip.dst, icmpv6::solicited_node(&t));
            prop_assert_eq!(nd, NdRepr::Solicit { target: t, source_mac: Some(a) });
            nd_advert(&mut f, b, t, Some((s, a))).unwrap();
            let (eth, ip, nd) = parse_nd(&f);
            prop_assert_eq!((eth.dst(), ip.dst, ip.src), (a, s, t));
            let ok = matches!(nd, NdRepr::Advert { target, target_mac: Some(m), .. } if target == t && m == b);
            prop_assert!(ok);
        }

        #[test]
        fn responder_never_panics(f in proptest::collection::vec(any::<u8>(), 0..80), m in arb_mac()) {
            let mut g = f.clone();
            let mut out = [0u8; 64];
            let r1 = arp_responder(&f, m, &mut out).map(|_| ());
            let r2 = arp_responder_in_place(&mut g, m).map(|_| ());
            prop_assert_eq!(r1, r2);
        }
    }
}
