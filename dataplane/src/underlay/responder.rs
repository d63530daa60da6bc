//! Frames on the underlay port that are not tunnel traffic: the switch is a host on the
//! underlay, so it answers ARP (IPv4) or Neighbor Solicitations (IPv6) for its
//! `local_ip`, learns from replies and announcements, and builds the requests its
//! neighbour cache asks for.
//!
//! [`underlay_control`] classifies one frame and, for a request for our address, writes
//! the answer into the caller's buffer; it never allocates and no input makes it panic.
//! It decides like a Linux host with default settings:
//! - Frames to another host's unicast MAC are not ours (Linux drops `PACKET_OTHERHOST`
//!   before ARP/ND see them); VLAN-tagged frames neither (the underlay is untagged).
//! - ARP only when `local_ip` is IPv4, ND only when it is IPv6.
//! - An ARP request for `local_ip` is answered to its sender MAC (a probe from 0.0.0.0
//!   too, as Linux does, with target 0.0.0.0); an NS for it, to its source, or to all
//!   nodes when it comes from `::` (duplicate address detection: we defend the address).
//! - Whoever asks, replies, or announces itself is reported with its (IP, MAC) for
//!   [`NeighborCache::confirm`](super::NeighborCache::confirm), which only updates
//!   addresses the cache already has.
//! - Someone else sending from our address, or advertising it, is an
//!   [`Invalid::AddressConflict`]; our own frames coming back are [`Control::NotForUs`].

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use encap::arp::{self, ArpRepr, Operation};
use encap::ethernet::{self, EtherType};
use encap::icmpv6::{self, NdRepr};
use encap::ipv6::{self, Ipv6Repr};
use encap::{neigh, ErrorKind, MacAddr};

/// What to do with a frame from the underlay that is not a tunnel packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// A request for our address: send `out[..len]` back out of the underlay port.
    /// `asker` is who asked, for the neighbour cache (`None` for an ARP probe or a DAD
    /// solicitation from the unspecified address, and for an NS without a Source
    /// Link-Layer Address).
    Reply {
        /// Length of the answer in `out`.
        len: usize,
        /// The requester's address and MAC.
        asker: Option<(IpAddr, MacAddr)>,
    },
    /// `ip` is at `mac` (an ARP reply, a gratuitous ARP or another host's request, an
    /// NA with a Target Link-Layer Address): confirm it in the neighbour cache.
    Learn(IpAddr, MacAddr),
    /// Nothing for us (another protocol, another host's address, our own frame).
    NotForUs,
    /// An ARP or ND frame that must not be acted upon; count it.
    Invalid(Invalid),
}

/// Why an ARP or ND frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// It does not parse or fails a protocol check (RFC 4861 §7.1 for ND).
    Malformed(encap::Error),
    /// A sender MAC or IP that is multicast, broadcast, zero or loopback.
    BadSender,
    /// Another host uses or advertises our `local_ip`.
    AddressConflict,
    /// `out` is too small for the answer (at least 86 bytes are needed).
    NoRoom,
}

/// Classifies `frame` (received on the underlay port, untagged) for a switch whose
/// underlay address is `local_ip` at `local_mac`; the answer to a request goes to `out`.
pub fn underlay_control(
    frame: &[u8],
    local_ip: IpAddr,
    local_mac: MacAddr,
    out: &mut [u8],
) -> Control {
    let eth = match ethernet::Packet::new_checked(frame) {
        Ok(e) => e,
        Err(e) => return Control::Invalid(Invalid::Malformed(e)),
    };
    let dst = eth.dst();
    if !dst.is_multicast() && dst != local_mac {
        return Control::NotForUs;
    }
    if eth.src() == local_mac {
        return Control::NotForUs; // our own frame, looped back
    }
    match (eth.ethertype(), local_ip) {
        (EtherType::Arp, IpAddr::V4(ip)) => arp_control(&eth, ip, local_mac, out),
        (EtherType::Ipv6, IpAddr::V6(ip)) => nd_control(&eth, ip, local_mac, out),
        _ => Control::NotForUs,
    }
}

fn bad_v4_sender(ip: Ipv4Addr) -> bool {
    ip.is_multicast() || ip.is_broadcast() || ip.is_loopback()
}

fn arp_control(
    eth: &ethernet::Packet<&[u8]>,
    local_ip: Ipv4Addr,
    local_mac: MacAddr,
    out: &mut [u8],
) -> Control {
    let a = match arp::Packet::new_checked(eth.payload()).and_then(|p| ArpRepr::parse(&p)) {
        Ok(a) => a,
        Err(e) => return Control::Invalid(Invalid::Malformed(e)),
    };
    if !eth.src().is_unicast() || !a.sender_mac.is_unicast() || bad_v4_sender(a.sender_ip) {
        return Control::Invalid(Invalid::BadSender);
    }
    if a.sender_ip == local_ip {
        return Control::Invalid(Invalid::AddressConflict);
    }
    let known_sender = !a.sender_ip.is_unspecified();
    match a.operation {
        Operation::Request if a.target_ip == local_ip => {
            match neigh::arp_reply(out, local_mac, local_ip, a.sender_mac, a.sender_ip) {
                Ok(len) => Control::Reply {
                    len,
                    asker: known_sender.then_some((IpAddr::V4(a.sender_ip), a.sender_mac)),
                },
                Err(_) => Control::Invalid(Invalid::NoRoom),
            }
        }
        Operation::Request | Operation::Reply if known_sender => {
            Control::Learn(IpAddr::V4(a.sender_ip), a.sender_mac)
        }
        Operation::Reply => Control::Invalid(Invalid::BadSender),
        _ => Control::NotForUs,
    }
}

fn nd_control(
    eth: &ethernet::Packet<&[u8]>,
    local_ip: Ipv6Addr,
    local_mac: MacAddr,
    out: &mut [u8],
) -> Control {
    let bytes = eth.payload();
    let parsed = ipv6::Packet::new_checked(bytes).and_then(|p| {
        let r = Ipv6Repr::parse(&p)?;
        let (proto, off) = p.upper_layer()?;
        Ok((r, proto, off, ipv6::HEADER_LEN + usize::from(r.payload_len)))
    });
    let (ip, proto, off, end) = match parsed {
        Ok(v) => v,
        Err(e) if matches!(e.kind, ErrorKind::Fragment | ErrorKind::Unsupported) => {
            return Control::NotForUs
        }
        Err(e) => return Control::Invalid(Invalid::Malformed(e)),
    };
    if proto != icmpv6::NEXT_HEADER {
        return Control::NotForUs;
    }
    let Some(msg) = bytes.get(off..end) else {
        return Control::NotForUs; // upper_layer keeps off <= end; unreachable
    };
    let nd = match icmpv6::Packet::new_checked(msg).and_then(|p| NdRepr::parse(&ip, &p)) {
        Ok(nd) => nd,
        Err(e) if e.kind == ErrorKind::NotMatched => return Control::NotForUs,
        Err(e) => return Control::Invalid(Invalid::Malformed(e)),
    };
    match nd {
        NdRepr::Solicit { target, source_mac } => {
            if target != local_ip
                || (ip.dst != local_ip && ip.dst != icmpv6::solicited_node(&local_ip))
            {
                return Control::NotForUs;
            }
            if ip.src == local_ip {
                return Control::Invalid(Invalid::AddressConflict);
            }
            let reply_mac = source_mac.unwrap_or(eth.src());
            if !reply_mac.is_unicast() || !eth.src().is_unicast() || ip.src.is_multicast() {
                return Control::Invalid(Invalid::BadSender);
            }
            let to = (!ip.src.is_unspecified()).then_some((ip.src, reply_mac));
            match neigh::nd_advert(out, local_mac, local_ip, to) {
                Ok(len) => Control::Reply {
                    len,
                    asker: to
                        .filter(|_| source_mac.is_some())
                        .map(|(ip, mac)| (IpAddr::V6(ip), mac)),
                },
                Err(_) => Control::Invalid(Invalid::NoRoom),
            }
        }
        NdRepr::Advert {
            target, target_mac, ..
        } => {
            if ip.dst != local_ip && !ip.dst.is_multicast() {
                return Control::NotForUs;
            }
            match target_mac {
                _ if target == local_ip => Control::Invalid(Invalid::AddressConflict),
                Some(m) if m.is_unicast() => Control::Learn(IpAddr::V6(target), m),
                Some(_) => Control::Invalid(Invalid::BadSender),
                None => Control::NotForUs,
            }
        }
    }
}

/// Builds into `out` the request resolving `target` from `local_ip` at `local_mac`: a
/// broadcast ARP request (IPv4) or an NS to the solicited-node multicast address (IPv6),
/// for each address [`NeighborCache::poll`](super::NeighborCache::poll) asks for.
/// Returns its length, or 0 when `target` and `local_ip` are of different families or
/// `out` is shorter than the frame (60 bytes for ARP, 86 for ND).
pub fn solicit(target: IpAddr, local_ip: IpAddr, local_mac: MacAddr, out: &mut [u8]) -> usize {
    let r = match (target, local_ip) {
        (IpAddr::V4(t), IpAddr::V4(l)) => neigh::arp_request(out, local_mac, l, t),
        (IpAddr::V6(t), IpAddr::V6(l)) => neigh::nd_solicit(out, local_mac, l, t),
        _ => return 0,
    };
    r.unwrap_or(0)
}

#[cfg(test)]
mod tests;
