use super::*;
use encap::icmpv6::NaFlags;
use proptest::prelude::*;

const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const OUR4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const OUR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn classify(frame: &[u8], local: IpAddr) -> (Control, Vec<u8>) {
    let mut out = [0u8; 128];
    let c = underlay_control(frame, local, OUR_MAC, &mut out);
    let len = match c {
        Control::Reply { len, .. } => len,
        _ => 0,
    };
    (c, out[..len].to_vec())
}

fn arp(op: Operation, sha: MacAddr, spa: Ipv4Addr, tha: MacAddr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut b = [0u8; 60];
    neigh::arp_request(&mut b, sha, spa, tpa).unwrap();
    let mut p = arp::Packet::new_unchecked(&mut b[14..42]);
    p.set_operation(op);
    p.set_target_mac(tha);
    if op == Operation::Reply {
        ethernet::Packet::new_unchecked(&mut b[..]).set_dst(tha);
    }
    b.to_vec()
}

fn parse_arp(f: &[u8]) -> (MacAddr, ArpRepr) {
    let e = ethernet::Packet::new_checked(f).unwrap();
    (
        e.dst(),
        ArpRepr::parse(&arp::Packet::new_checked(&f[14..]).unwrap()).unwrap(),
    )
}

#[test]
fn arp_request_for_us_is_answered_and_the_asker_reported() {
    let req = arp(Operation::Request, PEER_MAC, PEER4, MacAddr::ZERO, OUR4);
    let (c, reply) = classify(&req, OUR4.into());
    assert_eq!(
        c,
        Control::Reply {
            len: 60,
            asker: Some((PEER4.into(), PEER_MAC))
        }
    );
    let (dst, a) = parse_arp(&reply);
    assert_eq!(dst, PEER_MAC);
    assert_eq!(
        a,
        ArpRepr {
            operation: Operation::Reply,
            sender_mac: OUR_MAC,
            sender_ip: OUR4,
            target_mac: PEER_MAC,
            target_ip: PEER4
        }
    );
    // A probe (RFC 5227: sender 0.0.0.0) is answered, nobody learned.
    let probe = arp(
        Operation::Request,
        PEER_MAC,
        Ipv4Addr::UNSPECIFIED,
        MacAddr::ZERO,
        OUR4,
    );
    let (c, reply) = classify(&probe, OUR4.into());
    assert_eq!(
        c,
        Control::Reply {
            len: 60,
            asker: None
        }
    );
    assert_eq!(parse_arp(&reply).1.target_ip, Ipv4Addr::UNSPECIFIED);
    // Too small an out buffer.
    let mut small = [0u8; 59];
    assert_eq!(
        underlay_control(&req, OUR4.into(), OUR_MAC, &mut small),
        Control::Invalid(Invalid::NoRoom)
    );
}

#[test]
fn arp_learning_and_refusals() {
    let local = IpAddr::V4(OUR4);
    let reply = arp(Operation::Reply, PEER_MAC, PEER4, OUR_MAC, OUR4);
    assert_eq!(
        classify(&reply, local).0,
        Control::Learn(PEER4.into(), PEER_MAC)
    );
    // Gratuitous ARP (request and reply forms) and others' requests: learned.
    let garp = arp(Operation::Request, PEER_MAC, PEER4, MacAddr::ZERO, PEER4);
    assert_eq!(
        classify(&garp, local).0,
        Control::Learn(PEER4.into(), PEER_MAC)
    );
    let other = arp(
        Operation::Request,
        PEER_MAC,
        PEER4,
        MacAddr::ZERO,
        Ipv4Addr::new(198, 18, 0, 9),
    );
    assert_eq!(
        classify(&other, local).0,
        Control::Learn(PEER4.into(), PEER_MAC)
    );
    // A reply to another host's MAC is not ours.
    let mut to_other = reply.clone();
    to_other[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x09]);
    assert_eq!(classify(&to_other, local).0, Control::NotForUs);
    // Our own request looped back.
    let ours = arp(Operation::Request, OUR_MAC, OUR4, MacAddr::ZERO, PEER4);
    assert_eq!(classify(&ours, local).0, Control::NotForUs);
    // Someone else claiming our address.
    let conflict = arp(Operation::Request, PEER_MAC, OUR4, MacAddr::ZERO, OUR4);
    assert_eq!(
        classify(&conflict, local).0,
        Control::Invalid(Invalid::AddressConflict)
    );
    // Bad senders.
    let mcast = arp(
        Operation::Reply,
        MacAddr([1, 0, 0x5e, 0, 0, 1]),
        PEER4,
        OUR_MAC,
        OUR4,
    );
    assert_eq!(
        classify(&mcast, local).0,
        Control::Invalid(Invalid::BadSender)
    );
    let bcast_ip = arp(
        Operation::Reply,
        PEER_MAC,
        Ipv4Addr::BROADCAST,
        OUR_MAC,
        OUR4,
    );
    assert_eq!(
        classify(&bcast_ip, local).0,
        Control::Invalid(Invalid::BadSender)
    );
    let zero_ip = arp(
        Operation::Reply,
        PEER_MAC,
        Ipv4Addr::UNSPECIFIED,
        OUR_MAC,
        OUR4,
    );
    assert_eq!(
        classify(&zero_ip, local).0,
        Control::Invalid(Invalid::BadSender)
    );
    // Malformed: truncated, other hardware type.
    assert!(matches!(
        classify(&reply[..30], local).0,
        Control::Invalid(Invalid::Malformed(_))
    ));
    let mut hw = reply.clone();
    hw[15] = 6;
    assert!(matches!(
        classify(&hw, local).0,
        Control::Invalid(Invalid::Malformed(_))
    ));
    assert!(matches!(
        classify(&reply[..5], local).0,
        Control::Invalid(Invalid::Malformed(_))
    ));
    // ARP on an IPv6 underlay, tagged ARP, other EtherTypes: not ours.
    assert_eq!(classify(&reply, OUR6.into()).0, Control::NotForUs);
    let mut tagged = reply.clone();
    tagged[12..14].copy_from_slice(&[0x81, 0]);
    assert_eq!(classify(&tagged, local).0, Control::NotForUs);
}

fn ns_from(
    src: Ipv6Addr,
    eth_src: MacAddr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    sll: Option<MacAddr>,
) -> Vec<u8> {
    nd_frame(
        eth_src,
        src,
        dst,
        NdRepr::Solicit {
            target,
            source_mac: sll,
        },
    )
}

fn nd_frame(eth_src: MacAddr, src: Ipv6Addr, dst: Ipv6Addr, nd: NdRepr) -> Vec<u8> {
    let n = nd.buffer_len();
    let mut b = vec![0u8; 14 + 40 + n];
    let mut e = ethernet::Packet::new_unchecked(&mut b[..]);
    e.set_dst(if dst.is_multicast() {
        icmpv6::multicast_mac(&dst)
    } else {
        OUR_MAC
    });
    e.set_src(eth_src);
    e.set_ethertype(EtherType::Ipv6);
    Ipv6Repr {
        src,
        dst,
        next_header: 58,
        payload_len: n as u16,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut ipv6::Packet::new_unchecked(&mut b[14..]));
    nd.emit(&src, &dst, &mut icmpv6::Packet::new_unchecked(&mut b[54..]));
    b
}

fn parse_na(f: &[u8]) -> (MacAddr, Ipv6Repr, NdRepr) {
    let e = ethernet::Packet::new_checked(f).unwrap();
    let p = ipv6::Packet::new_checked(&f[14..]).unwrap();
    let r = Ipv6Repr::parse(&p).unwrap();
    let nd = NdRepr::parse(&r, &icmpv6::Packet::new_checked(p.payload()).unwrap()).unwrap();
    (e.dst(), r, nd)
}

#[test]
fn ns_for_us_is_answered() {
    let local = IpAddr::V6(OUR6);
    let sn = icmpv6::solicited_node(&OUR6);
    let ns = ns_from(PEER6, PEER_MAC, sn, OUR6, Some(PEER_MAC));
    let (c, reply) = classify(&ns, local);
    assert_eq!(
        c,
        Control::Reply {
            len: 86,
            asker: Some((PEER6.into(), PEER_MAC))
        }
    );
    let (dst, ip, nd) = parse_na(&reply);
    assert_eq!(
        (dst, ip.src, ip.dst, ip.hop_limit),
        (PEER_MAC, OUR6, PEER6, 255)
    );
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
    // Unicast NS (a refresh) without SLLA: answered to the Ethernet source, nobody learned.
    let ns = ns_from(PEER6, PEER_MAC, OUR6, OUR6, None);
    let (c, reply) = classify(&ns, local);
    assert_eq!(
        c,
        Control::Reply {
            len: 86,
            asker: None
        }
    );
    assert_eq!(parse_na(&reply).0, PEER_MAC);
    // DAD for our address: defended to all nodes.
    let dad = ns_from(Ipv6Addr::UNSPECIFIED, PEER_MAC, sn, OUR6, None);
    let (c, reply) = classify(&dad, local);
    assert_eq!(
        c,
        Control::Reply {
            len: 86,
            asker: None
        }
    );
    let (dst, ip, nd) = parse_na(&reply);
    assert_eq!(
        (dst, ip.dst),
        (icmpv6::multicast_mac(&icmpv6::ALL_NODES), icmpv6::ALL_NODES)
    );
    assert!(matches!(nd, NdRepr::Advert { flags, .. } if !flags.solicited));
    // NS for another address, or to another solicited-node group: not ours.
    let other = ns_from(
        PEER6,
        PEER_MAC,
        icmpv6::solicited_node(&PEER6),
        PEER6,
        Some(PEER_MAC),
    );
    assert_eq!(classify(&other, local).0, Control::NotForUs);
    let wrong_group = ns_from(
        PEER6,
        PEER_MAC,
        icmpv6::solicited_node(&PEER6),
        OUR6,
        Some(PEER_MAC),
    );
    assert_eq!(classify(&wrong_group, local).0, Control::NotForUs);
    // ND on an IPv4 underlay: not ours.
    assert_eq!(
        classify(
            &ns_from(PEER6, PEER_MAC, sn, OUR6, Some(PEER_MAC)),
            OUR4.into()
        )
        .0,
        Control::NotForUs
    );
}

#[test]
fn na_is_learned_and_bad_nd_refused() {
    let local = IpAddr::V6(OUR6);
    let na = |target, mac: Option<MacAddr>, solicited, dst| {
        nd_frame(
            PEER_MAC,
            PEER6,
            dst,
            NdRepr::Advert {
                flags: NaFlags {
                    router: false,
                    solicited,
                    override_: true,
                },
                target,
                target_mac: mac,
            },
        )
    };
    assert_eq!(
        classify(&na(PEER6, Some(PEER_MAC), true, OUR6), local).0,
        Control::Learn(PEER6.into(), PEER_MAC)
    );
    // Unsolicited to all nodes (an announcement).
    assert_eq!(
        classify(&na(PEER6, Some(PEER_MAC), false, icmpv6::ALL_NODES), local).0,
        Control::Learn(PEER6.into(), PEER_MAC)
    );
    // Without TLLA: nothing to learn.
    assert_eq!(
        classify(&na(PEER6, None, true, OUR6), local).0,
        Control::NotForUs
    );
    // Advertising our address.
    assert_eq!(
        classify(&na(OUR6, Some(PEER_MAC), false, icmpv6::ALL_NODES), local).0,
        Control::Invalid(Invalid::AddressConflict)
    );
    // RFC 4861 §7.1.2: solicited to multicast.
    assert!(matches!(
        classify(&na(PEER6, Some(PEER_MAC), true, icmpv6::ALL_NODES), local).0,
        Control::Invalid(Invalid::Malformed(e)) if e.kind == ErrorKind::BadValue
    ));
    // Hop limit 64.
    let mut f = na(PEER6, Some(PEER_MAC), true, OUR6);
    f[21] = 64;
    assert!(matches!(
        classify(&f, local).0,
        Control::Invalid(Invalid::Malformed(_))
    ));
    // Bad checksum.
    let mut f = na(PEER6, Some(PEER_MAC), true, OUR6);
    f[57] ^= 1;
    assert!(matches!(
        classify(&f, local).0,
        Control::Invalid(Invalid::Malformed(e)) if e.kind == ErrorKind::BadChecksum
    ));
    // Another ICMPv6 message (echo request), UDP: not ours.
    let mut f = na(PEER6, Some(PEER_MAC), true, OUR6);
    f[54] = 128;
    assert_eq!(classify(&f, local).0, Control::NotForUs);
    f[21] = 64; // an ordinary hop limit: still not ND, not malformed
    assert_eq!(classify(&f, local).0, Control::NotForUs);
    let mut f = na(PEER6, Some(PEER_MAC), true, OUR6);
    f[20] = 17;
    assert_eq!(classify(&f, local).0, Control::NotForUs);
}

#[test]
fn solicit_builds_both_families() {
    let mut out = [0u8; 128];
    assert_eq!(solicit(PEER4.into(), OUR4.into(), OUR_MAC, &mut out), 60);
    let (dst, a) = parse_arp(&out[..60]);
    assert_eq!(
        (dst, a.operation, a.target_ip, a.sender_ip),
        (MacAddr::BROADCAST, Operation::Request, PEER4, OUR4)
    );
    assert_eq!(solicit(PEER6.into(), OUR6.into(), OUR_MAC, &mut out), 86);
    let (dst, ip, nd) = parse_na(&out[..86]);
    assert_eq!(dst, icmpv6::multicast_mac(&icmpv6::solicited_node(&PEER6)));
    assert_eq!(ip.src, OUR6);
    assert_eq!(
        nd,
        NdRepr::Solicit {
            target: PEER6,
            source_mac: Some(OUR_MAC)
        }
    );
    assert_eq!(solicit(PEER6.into(), OUR4.into(), OUR_MAC, &mut out), 0);
    assert_eq!(
        solicit(PEER4.into(), OUR4.into(), OUR_MAC, &mut out[..59]),
        0
    );
}

/// The cache and the responder together: resolution of a peer, whose own request for our
/// address then refreshes it.
#[test]
fn cache_and_responder_resolve_a_peer() {
    use super::super::NeighborCache;
    let mut cache = NeighborCache::<u32>::new(4);
    let peer = IpAddr::V4(PEER4);
    cache.enqueue(peer, 7, 0).unwrap();
    let mut wire = Vec::new();
    cache.poll(
        0,
        &mut |ip| {
            let mut b = [0u8; 60];
            let n = solicit(ip, OUR4.into(), OUR_MAC, &mut b);
            wire.push(b[..n].to_vec());
        },
        &mut |_| {},
    );
    assert_eq!(wire.len(), 1);
    // The peer answers the request the cache sent.
    let (_, req) = parse_arp(&wire[0]);
    let answer = arp(
        Operation::Reply,
        PEER_MAC,
        req.target_ip,
        req.sender_mac,
        req.sender_ip,
    );
    let Control::Learn(ip, mac) = classify(&answer, OUR4.into()).0 else {
        panic!("not learned")
    };
    let mut sent = Vec::new();
    cache.confirm(ip, mac, 1, &mut |t, m| sent.push((t, m)));
    assert_eq!(sent, vec![(7, PEER_MAC)]);
    assert_eq!(cache.lookup(peer, 2), Some(PEER_MAC));
}

proptest! {
    /// Any bytes: no panic; a reply fits `out` and parses as ARP or ND from us.
    #[test]
    fn never_panics(
        mut f in proptest::collection::vec(any::<u8>(), 0..120),
        kind in 0u8..3,
        v6 in any::<bool>(),
    ) {
        // Make some inputs get further: an ARP or IPv6 EtherType, to us.
        if f.len() >= 14 && kind > 0 {
            f[..6].copy_from_slice(&OUR_MAC.0);
            let t: u16 = if kind == 1 { 0x0806 } else { 0x86dd };
            f[12..14].copy_from_slice(&t.to_be_bytes());
        }
        let local: IpAddr = if v6 { OUR6.into() } else { OUR4.into() };
        let (c, reply) = classify(&f, local);
        if let Control::Reply { len, .. } = c {
            prop_assert!(len == 60 || len == 86);
            let e = ethernet::Packet::new_checked(&reply[..]).unwrap();
            prop_assert_eq!(e.src(), OUR_MAC);
        }
    }

    /// Requests for our address from any unicast peer are answered to that peer.
    #[test]
    fn requests_for_us_round_trip(m: [u8; 6], ip4: [u8; 4], ip6: [u8; 16]) {
        let mut m = m;
        m[0] &= 0xfe;
        m[5] |= 1;
        let peer_mac = MacAddr(m);
        prop_assume!(peer_mac != OUR_MAC);
        let p4 = Ipv4Addr::from(ip4);
        prop_assume!(!bad_v4_sender(p4) && p4 != OUR4 && !p4.is_unspecified());
        let req = arp(Operation::Request, peer_mac, p4, MacAddr::ZERO, OUR4);
        let (c, reply) = classify(&req, OUR4.into());
        prop_assert_eq!(c, Control::Reply { len: 60, asker: Some((p4.into(), peer_mac)) });
        prop_assert_eq!(parse_arp(&reply).0, peer_mac);
        let p6 = Ipv6Addr::from(ip6);
        prop_assume!(!p6.is_multicast() && !p6.is_unspecified() && p6 != OUR6);
        let ns = ns_from(p6, peer_mac, icmpv6::solicited_node(&OUR6), OUR6, Some(peer_mac));
        let (c, reply) = classify(&ns, OUR6.into());
        prop_assert_eq!(c, Control::Reply { len: 86, asker: Some((p6.into(), peer_mac)) });
        let (dst, ip, _) = parse_na(&reply);
        prop_assert_eq!((dst, ip.dst), (peer_mac, p6));
    }
}
