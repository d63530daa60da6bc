//! Frame builders and a tiny userspace overlay host (answers ARP and ICMP echo), built
//! with `encap`'s own views and Reprs.

use std::net::Ipv4Addr;

use encap::arp::{self, ArpRepr, Operation};
use encap::ethernet::{self, EthernetRepr};
use encap::ipv4::{self, protocol, Ipv4Repr};
use encap::{checksum, EtherType, Frame, MacAddr, ETH_HLEN, ETH_ZLEN};

/// `bytes` in a fresh buffer with `headroom` bytes free in front (for encapsulation) and
/// `tailroom` behind.
pub fn framed(
    bytes: &[u8],
    headroom: usize,
    tailroom: usize,
) -> Result<Frame<Vec<u8>>, encap::Error> {
    let mut buf = vec![0u8; headroom + bytes.len() + tailroom];
    buf[headroom..headroom + bytes.len()].copy_from_slice(bytes);
    Frame::new(buf, headroom, bytes.len())
}

/// An Ethernet + ARP frame padded to 60 bytes.
pub fn arp_frame(eth_dst: MacAddr, eth_src: MacAddr, arp: &ArpRepr) -> Vec<u8> {
    let mut f = vec![0u8; ETH_ZLEN];
    EthernetRepr {
        dst: eth_dst,
        src: eth_src,
        ethertype: EtherType::Arp,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut f[..]));
    arp.emit(&mut arp::Packet::new_unchecked(&mut f[ETH_HLEN..]));
    f
}

/// The ARP packet of an Ethernet frame, if it is one.
pub fn parse_arp(frame: &[u8]) -> Option<(EthernetRepr, ArpRepr)> {
    let eth = ethernet::Packet::new_checked(frame).ok()?;
    let e = EthernetRepr::parse(&eth);
    if e.ethertype != EtherType::Arp {
        return None;
    }
    let a = ArpRepr::parse(&arp::Packet::new_checked(eth.payload()).ok()?).ok()?;
    Some((e, a))
}

/// An ICMP echo request or reply inside an Ethernet/IPv4 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpEcho {
    /// Ethernet header.
    pub eth: EthernetRepr,
    /// IPv4 source.
    pub src: Ipv4Addr,
    /// IPv4 destination.
    pub dst: Ipv4Addr,
    /// 8 = request, 0 = reply.
    pub icmp_type: u8,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
    /// Payload after the 8-byte ICMP header.
    pub payload: Vec<u8>,
}

/// Parses an ICMP echo request/reply frame, checking the IPv4 header checksum, that it is
/// not a fragment, and the ICMP checksum.
pub fn parse_icmp_echo(frame: &[u8]) -> Option<IcmpEcho> {
    let eth = ethernet::Packet::new_checked(frame).ok()?;
    let e = EthernetRepr::parse(&eth);
    if e.ethertype != EtherType::Ipv4 {
        return None;
    }
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    let r = Ipv4Repr::parse(&ip).ok()?;
    if r.protocol != protocol::ICMP || ip.is_fragment() {
        return None;
    }
    let icmp = ip.payload();
    if icmp.len() < 8 || !matches!(icmp[0], 0 | 8) || icmp[1] != 0 || checksum::checksum(icmp) != 0
    {
        return None;
    }
    Some(IcmpEcho {
        eth: e,
        src: r.src,
        dst: r.dst,
        icmp_type: icmp[0],
        ident: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: icmp[8..].to_vec(),
    })
}

/// Builds an Ethernet/IPv4/ICMP echo frame with correct IPv4 and ICMP checksums, padded to
/// 60 bytes.
pub fn icmp_echo_frame(e: &IcmpEcho) -> Vec<u8> {
    let icmp_len = 8 + e.payload.len();
    let mut f = vec![0u8; (ETH_HLEN + ipv4::HEADER_LEN + icmp_len).max(ETH_ZLEN)];
    e.eth.emit(&mut ethernet::Packet::new_unchecked(&mut f[..]));
    let mut ip = Ipv4Repr::new(e.src, e.dst, protocol::ICMP, icmp_len as u16);
    ip.ttl = 64;
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut f[ETH_HLEN..]));
    let at = ETH_HLEN + ipv4::HEADER_LEN;
    let icmp = &mut f[at..at + icmp_len];
    icmp[0] = e.icmp_type;
    icmp[4..6].copy_from_slice(&e.ident.to_be_bytes());
    icmp[6..8].copy_from_slice(&e.seq.to_be_bytes());
    icmp[8..].copy_from_slice(&e.payload);
    let c = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f
}

/// What an [`OverlayHost`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// An ARP request for our address.
    Arp,
    /// An ICMP echo request to our address (its sequence number).
    Echo(u16),
}

/// A host with one MAC and one IPv4 address that lives in userspace: it answers ARP
/// requests for its address and ICMP echo requests sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayHost {
    /// Our MAC.
    pub mac: MacAddr,
    /// Our IPv4 address.
    pub ip: Ipv4Addr,
}

impl OverlayHost {
    /// The answer to an inner frame, or `None` if the frame asks nothing of us.
    pub fn answer(&self, frame: &[u8]) -> Option<(Answered, Vec<u8>)> {
        if let Some((_, a)) = parse_arp(frame) {
            if a.operation != Operation::Request || a.target_ip != self.ip {
                return None;
            }
            let reply = ArpRepr {
                operation: Operation::Reply,
                sender_mac: self.mac,
                sender_ip: self.ip,
                target_mac: a.sender_mac,
                target_ip: a.sender_ip,
            };
            return Some((Answered::Arp, arp_frame(a.sender_mac, self.mac, &reply)));
        }
        let req = parse_icmp_echo(frame)?;
        if req.icmp_type != 8 || req.dst != self.ip || req.eth.dst != self.mac {
            return None;
        }
        let reply = IcmpEcho {
            eth: EthernetRepr {
                dst: req.eth.src,
                src: self.mac,
                ethertype: EtherType::Ipv4,
            },
            src: self.ip,
            dst: req.src,
            icmp_type: 0,
            ident: req.ident,
            seq: req.seq,
            payload: req.payload,
        };
        Some((Answered::Echo(req.seq), icmp_echo_frame(&reply)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: OverlayHost = OverlayHost {
        mac: MacAddr([2, 0, 0, 0, 0x19, 2]),
        ip: Ipv4Addr::new(198, 19, 0, 2),
    };
    const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0x19, 1]);

    #[test]
    fn answers_arp_for_its_address_only() {
        let req = |target| ArpRepr {
            operation: Operation::Request,
            sender_mac: PEER,
            sender_ip: Ipv4Addr::new(198, 19, 0, 1),
            target_mac: MacAddr::ZERO,
            target_ip: target,
        };
        let f = arp_frame(MacAddr::BROADCAST, PEER, &req(HOST.ip));
        let (what, reply) = HOST.answer(&f).unwrap();
        assert_eq!(what, Answered::Arp);
        assert_eq!(reply.len(), ETH_ZLEN);
        let (eth, arp) = parse_arp(&reply).unwrap();
        assert_eq!((eth.dst, eth.src), (PEER, HOST.mac));
        assert_eq!(arp.operation, Operation::Reply);
        assert_eq!((arp.sender_mac, arp.sender_ip), (HOST.mac, HOST.ip));
        assert_eq!(
            (arp.target_mac, arp.target_ip),
            (PEER, Ipv4Addr::new(198, 19, 0, 1))
        );
        let other = arp_frame(MacAddr::BROADCAST, PEER, &req(Ipv4Addr::new(198, 19, 0, 3)));
        assert!(HOST.answer(&other).is_none());
    }

    #[test]
    fn echo_reply_checksums_verify_with_etherparse() {
        let req = IcmpEcho {
            eth: EthernetRepr {
                dst: HOST.mac,
                src: PEER,
                ethertype: EtherType::Ipv4,
            },
            src: Ipv4Addr::new(198, 19, 0, 1),
            dst: HOST.ip,
            icmp_type: 8,
            ident: 0x1234,
            seq: 7,
            payload: (0..57u8).collect(),
        };
        let f = icmp_echo_frame(&req);
        assert_eq!(parse_icmp_echo(&f).unwrap(), req);
        let (what, reply) = HOST.answer(&f).unwrap();
        assert_eq!(what, Answered::Echo(7));
        let p = etherparse::SlicedPacket::from_ethernet(&reply).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(h.source, [198, 19, 0, 2]);
        let Some(etherparse::TransportSlice::Icmpv4(icmp)) = p.transport else {
            panic!("not ICMP")
        };
        let etherparse::Icmpv4Type::EchoReply(e) = icmp.icmp_type() else {
            panic!("not an echo reply")
        };
        assert_eq!((e.id, e.seq), (0x1234, 7));
        assert_eq!(icmp.payload(), &req.payload[..]);
        assert_eq!(
            icmp.checksum(),
            icmp.icmp_type().calc_checksum(icmp.payload())
        );
        // A corrupted request is not answered.
        let mut bad = f.clone();
        bad[ETH_HLEN + ipv4::HEADER_LEN + 9] ^= 1;
        assert!(HOST.answer(&bad).is_none());
    }
}
