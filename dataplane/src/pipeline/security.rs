//! Port security: what Neutron's `port_security_enabled` with fixed IPs and
//! `allowed_address_pairs` lets a VM port send (the OVS agent's tables 24/25 and its
//! firewall's anti-spoofing rules).
//!
//! A secured port may send:
//! - from its own MAC or an allowed pair's MAC only ([`DropReason::SpoofedMac`]);
//! - ARP whose sender (MAC, IP) is an allowed pair, or an ARP probe (sender IP 0.0.0.0,
//!   RFC 5227) from an allowed MAC ([`DropReason::SpoofedArp`]);
//! - IPv4 from an allowed (MAC, address) pair; from 0.0.0.0 only a DHCP client's
//!   request (UDP 68 → 67) ([`DropReason::SpoofedIp`]);
//! - IPv6 from an allowed pair, or from the link-local address (EUI-64) of an allowed
//!   MAC; from `::` only duplicate address detection and MLD reports (ICMPv6 131, 135,
//!   143);
//! - neighbour advertisements for its own addresses only; never a router
//!   advertisement or a redirect ([`DropReason::SpoofedNd`]);
//! - no DHCP or DHCPv6 server replies (UDP 67 → 68, 547 → 546: a rogue DHCP server,
//!   [`DropReason::SpoofedDhcp`]).
//!
//! Other EtherTypes pass the MAC check only. The lists are short (a port has a few
//! addresses), so they are scanned; nothing allocates.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use encap::ethernet::EtherType;
use encap::MacAddr;
use ipnet::IpNet;

use crate::config::PortSecurity;
use crate::counters::DropReason;

const ICMPV6: u8 = 58;
const UDP: u8 = 17;
const ND_ROUTER_ADVERT: u8 = 134;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_REDIRECT: u8 = 137;
/// ICMPv6 a host sends from `::`: MLD report, neighbour solicitation (DAD), MLDv2 report.
const FROM_UNSPECIFIED: [u8; 3] = [131, 135, 143];

/// A secured port's allowed sources, compiled from [`PortSecurity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// Source MACs: the port's, then those of the allowed pairs, each once.
    macs: Box<[MacAddr]>,
    /// (MAC, prefix) pairs; the link-local (EUI-64) address of each MAC included.
    pairs: Box<[(MacAddr, IpNet)]>,
}

impl Security {
    /// Compiles a port's configuration.
    pub fn new(sec: &PortSecurity) -> Security {
        let mut macs = vec![sec.mac];
        for a in &sec.allowed {
            if !macs.contains(&a.mac) {
                macs.push(a.mac);
            }
        }
        let mut pairs: Vec<(MacAddr, IpNet)> = sec.allowed.iter().map(|a| (a.mac, a.ip)).collect();
        for &mac in &macs {
            pairs.push((mac, IpNet::from(IpAddr::V6(link_local(mac)))));
        }
        Security {
            macs: macs.into(),
            pairs: pairs.into(),
        }
    }

    /// Whether `src` may send.
    #[inline]
    fn mac_allowed(&self, src: MacAddr) -> bool {
        self.macs.contains(&src)
    }

    /// Whether `(mac, ip)` is an allowed pair.
    fn pair_allowed(&self, mac: MacAddr, ip: IpAddr) -> bool {
        self.pairs
            .iter()
            .any(|&(m, net)| m == mac && net.contains(&ip))
    }

    /// Checks a frame from `src` with `ethertype`; `l3` is what follows its Ethernet
    /// header (and tag). Out of line: most ports are not secured, and their loop stays
    /// small.
    #[inline(never)]
    pub fn check(&self, src: MacAddr, ethertype: EtherType, l3: &[u8]) -> Result<(), DropReason> {
        if !self.mac_allowed(src) {
            return Err(DropReason::SpoofedMac);
        }
        match ethertype {
            EtherType::Arp => self.check_arp(src, l3),
            EtherType::Ipv4 => self.check_ipv4(src, l3),
            EtherType::Ipv6 => self.check_ipv6(src, l3),
            _ => Ok(()),
        }
    }

    fn check_arp(&self, src: MacAddr, l3: &[u8]) -> Result<(), DropReason> {
        let Ok(p) = encap::arp::Packet::new_checked(l3) else {
            return Err(DropReason::SpoofedArp);
        };
        // Ethernet/IPv4 ARP only: anything else cannot be checked.
        if p.hardware_type() != 1
            || p.protocol_type() != EtherType::Ipv4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(DropReason::SpoofedArp);
        }
        let (sha, spa) = (p.sender_mac(), p.sender_ip());
        // The sender MAC must be the frame's: a reply may not teach others' caches a
        // MAC the frame did not come from.
        if sha != src {
            return Err(DropReason::SpoofedArp);
        }
        if spa.is_unspecified() || self.pair_allowed(sha, IpAddr::V4(spa)) {
            Ok(())
        } else {
            Err(DropReason::SpoofedArp)
        }
    }

    fn check_ipv4(&self, src: MacAddr, l3: &[u8]) -> Result<(), DropReason> {
        let Ok(p) = encap::ipv4::Packet::new_checked(l3) else {
            return Err(DropReason::SpoofedIp);
        };
        let ip = p.src();
        let udp = (p.protocol() == UDP && p.frag_offset() == 0)
            .then(|| udp_ports(l3.get(p.header_len()..)?))
            .flatten();
        if udp == Some((67, 68)) {
            return Err(DropReason::SpoofedDhcp);
        }
        if ip == Ipv4Addr::UNSPECIFIED {
            // A DHCP client without an address yet.
            return if udp == Some((68, 67)) {
                Ok(())
            } else {
                Err(DropReason::SpoofedIp)
            };
        }
        if self.pair_allowed(src, IpAddr::V4(ip)) {
            Ok(())
        } else {
            Err(DropReason::SpoofedIp)
        }
    }

    fn check_ipv6(&self, src: MacAddr, l3: &[u8]) -> Result<(), DropReason> {
        let Ok(p) = encap::ipv6::Packet::new_checked(l3) else {
            return Err(DropReason::SpoofedIp);
        };
        let ip = p.src();
        let upper = p.upper_layer().ok();
        let icmp_type = match upper {
            Some((ICMPV6, off)) => Some(*l3.get(off).ok_or(DropReason::SpoofedNd)?),
            _ => None,
        };
        if ip.is_unspecified() {
            return match icmp_type {
                Some(t) if FROM_UNSPECIFIED.contains(&t) => Ok(()),
                _ => Err(DropReason::SpoofedIp),
            };
        }
        if !self.pair_allowed(src, IpAddr::V6(ip)) {
            return Err(DropReason::SpoofedIp);
        }
        match (icmp_type, upper) {
            (Some(ND_ROUTER_ADVERT | ND_REDIRECT), _) => Err(DropReason::SpoofedNd),
            (Some(ND_NEIGHBOR_ADVERT), Some((_, off))) => {
                // Type, code, checksum, flags: the target follows at 8.
                let target = l3
                    .get(off + 8..off + 24)
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .map(Ipv6Addr::from)
                    .ok_or(DropReason::SpoofedNd)?;
                if self.pair_allowed(src, IpAddr::V6(target)) {
                    Ok(())
                } else {
                    Err(DropReason::SpoofedNd)
                }
            }
            (_, Some((UDP, off))) => match l3.get(off..).and_then(udp_ports) {
                Some((547, 546)) => Err(DropReason::SpoofedDhcp),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// The (source, destination) ports of a UDP header.
fn udp_ports(udp: &[u8]) -> Option<(u16, u16)> {
    let b = udp.get(..4)?;
    Some((
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
    ))
}

/// The link-local address a host forms from its MAC (modified EUI-64, RFC 4291
/// appendix A): what Neutron allows a secured port besides its fixed IPs.
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AllowedPair;
    use proptest::prelude::*;

    const VM: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]);
    const PAIR_MAC: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 0x99]);
    const OTHER: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 2]);

    fn sec() -> Security {
        Security::new(&PortSecurity {
            mac: VM,
            allowed: vec![
                AllowedPair {
                    mac: VM,
                    ip: "198.18.1.5/32".parse().unwrap(),
                },
                AllowedPair {
                    mac: VM,
                    ip: "2001:db8::5/128".parse().unwrap(),
                },
                AllowedPair {
                    mac: PAIR_MAC,
                    ip: "198.18.9.0/24".parse().unwrap(),
                },
            ],
        })
    }

    fn arp(sha: MacAddr, spa: Ipv4Addr) -> Vec<u8> {
        let mut b = vec![0u8; 28];
        let mut p = encap::arp::Packet::new_unchecked(&mut b[..]);
        p.set_ethernet_ipv4();
        p.set_operation(encap::arp::Operation::Reply);
        p.set_sender_mac(sha);
        p.set_sender_ip(spa);
        p.set_target_ip(Ipv4Addr::new(198, 18, 1, 1));
        b
    }

    fn ipv4(src: Ipv4Addr, proto: u8, ports: (u16, u16)) -> Vec<u8> {
        let mut b = vec![0u8; 28];
        b[0] = 0x45;
        b[2..4].copy_from_slice(&28u16.to_be_bytes());
        b[8] = 64;
        b[9] = proto;
        b[12..16].copy_from_slice(&src.octets());
        b[16..20].copy_from_slice(&[255, 255, 255, 255]);
        b[20..22].copy_from_slice(&ports.0.to_be_bytes());
        b[22..24].copy_from_slice(&ports.1.to_be_bytes());
        b
    }

    fn ipv6(src: Ipv6Addr, next: u8, upper: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 40];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&(upper.len() as u16).to_be_bytes());
        b[6] = next;
        b[7] = 255;
        b[8..24].copy_from_slice(&src.octets());
        b[24..40].copy_from_slice(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets());
        b.extend_from_slice(upper);
        b
    }

    fn icmpv6(t: u8, target: Ipv6Addr) -> Vec<u8> {
        let mut u = vec![t, 0, 0, 0, 0, 0, 0, 0];
        u.extend_from_slice(&target.octets());
        u
    }

    #[test]
    fn source_mac_must_be_allowed() {
        let s = sec();
        let ip = ipv4(Ipv4Addr::new(198, 18, 1, 5), 1, (0, 0));
        assert_eq!(s.check(VM, EtherType::Ipv4, &ip), Ok(()));
        assert_eq!(
            s.check(OTHER, EtherType::Ipv4, &ip),
            Err(DropReason::SpoofedMac)
        );
        // Other EtherTypes: the MAC check only.
        assert_eq!(s.check(VM, EtherType::from(0x88b5), &[]), Ok(()));
        assert_eq!(
            s.check(OTHER, EtherType::from(0x88b5), &[]),
            Err(DropReason::SpoofedMac)
        );
    }

    #[test]
    fn arp_sender_must_be_an_allowed_pair() {
        let s = sec();
        let ok = arp(VM, Ipv4Addr::new(198, 18, 1, 5));
        assert_eq!(s.check(VM, EtherType::Arp, &ok), Ok(()));
        // Claiming another VM's address (ARP spoofing).
        let spoof = arp(VM, Ipv4Addr::new(198, 18, 1, 6));
        assert_eq!(
            s.check(VM, EtherType::Arp, &spoof),
            Err(DropReason::SpoofedArp)
        );
        // An allowed pair's address with its own MAC, not the port's.
        let pair = arp(PAIR_MAC, Ipv4Addr::new(198, 18, 9, 77));
        assert_eq!(s.check(PAIR_MAC, EtherType::Arp, &pair), Ok(()));
        assert_eq!(
            s.check(VM, EtherType::Arp, &arp(VM, Ipv4Addr::new(198, 18, 9, 77))),
            Err(DropReason::SpoofedArp)
        );
        // A sender MAC other than the frame's.
        assert_eq!(
            s.check(VM, EtherType::Arp, &pair),
            Err(DropReason::SpoofedArp)
        );
        // A probe (RFC 5227).
        let probe = arp(VM, Ipv4Addr::UNSPECIFIED);
        assert_eq!(s.check(VM, EtherType::Arp, &probe), Ok(()));
        // Truncated.
        assert_eq!(
            s.check(VM, EtherType::Arp, &ok[..20]),
            Err(DropReason::SpoofedArp)
        );
    }

    #[test]
    fn ipv4_source_and_dhcp() {
        let s = sec();
        let good = Ipv4Addr::new(198, 18, 1, 5);
        assert_eq!(s.check(VM, EtherType::Ipv4, &ipv4(good, 6, (1, 2))), Ok(()));
        assert_eq!(
            s.check(
                VM,
                EtherType::Ipv4,
                &ipv4(Ipv4Addr::new(198, 18, 1, 6), 6, (1, 2))
            ),
            Err(DropReason::SpoofedIp)
        );
        let zero = Ipv4Addr::UNSPECIFIED;
        assert_eq!(
            s.check(VM, EtherType::Ipv4, &ipv4(zero, UDP, (68, 67))),
            Ok(())
        );
        assert_eq!(
            s.check(VM, EtherType::Ipv4, &ipv4(zero, UDP, (68, 68))),
            Err(DropReason::SpoofedIp)
        );
        assert_eq!(
            s.check(VM, EtherType::Ipv4, &ipv4(good, UDP, (67, 68))),
            Err(DropReason::SpoofedDhcp)
        );
        // A pair's prefix, with the pair's MAC only.
        let in_pair = Ipv4Addr::new(198, 18, 9, 200);
        assert_eq!(
            s.check(PAIR_MAC, EtherType::Ipv4, &ipv4(in_pair, 6, (1, 2))),
            Ok(())
        );
        assert_eq!(
            s.check(VM, EtherType::Ipv4, &ipv4(in_pair, 6, (1, 2))),
            Err(DropReason::SpoofedIp)
        );
        assert_eq!(
            s.check(VM, EtherType::Ipv4, &[0x45, 0]),
            Err(DropReason::SpoofedIp)
        );
    }

    #[test]
    fn ipv6_source_link_local_and_nd() {
        let s = sec();
        let good: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let ll = link_local(VM);
        assert_eq!(ll, "fe80::f816:3eff:fe00:1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            s.check(VM, EtherType::Ipv6, &ipv6(good, 6, &[0; 20])),
            Ok(())
        );
        assert_eq!(s.check(VM, EtherType::Ipv6, &ipv6(ll, 6, &[0; 20])), Ok(()));
        let bad: Ipv6Addr = "2001:db8::6".parse().unwrap();
        assert_eq!(
            s.check(VM, EtherType::Ipv6, &ipv6(bad, 6, &[0; 20])),
            Err(DropReason::SpoofedIp)
        );
        // NA for its own address, and for another's.
        let na = |t| ipv6(ll, ICMPV6, &icmpv6(ND_NEIGHBOR_ADVERT, t));
        assert_eq!(s.check(VM, EtherType::Ipv6, &na(good)), Ok(()));
        assert_eq!(
            s.check(VM, EtherType::Ipv6, &na(bad)),
            Err(DropReason::SpoofedNd)
        );
        assert_eq!(
            s.check(
                VM,
                EtherType::Ipv6,
                &ipv6(ll, ICMPV6, &icmpv6(ND_ROUTER_ADVERT, good))
            ),
            Err(DropReason::SpoofedNd)
        );
        // DAD from ::, but nothing else from ::.
        let unspec = Ipv6Addr::UNSPECIFIED;
        assert_eq!(
            s.check(
                VM,
                EtherType::Ipv6,
                &ipv6(unspec, ICMPV6, &icmpv6(135, good))
            ),
            Ok(())
        );
        assert_eq!(
            s.check(VM, EtherType::Ipv6, &ipv6(unspec, 6, &[0; 20])),
            Err(DropReason::SpoofedIp)
        );
        // A DHCPv6 server reply.
        let mut udp = vec![0u8; 8];
        udp[..2].copy_from_slice(&547u16.to_be_bytes());
        udp[2..4].copy_from_slice(&546u16.to_be_bytes());
        assert_eq!(
            s.check(VM, EtherType::Ipv6, &ipv6(ll, UDP, &udp)),
            Err(DropReason::SpoofedDhcp)
        );
    }

    #[test]
    fn frames_built_by_etherparse() {
        // Whole frames from an independent builder: the VM's own UDP passes, another
        // source address does not.
        let frame = |src: [u8; 4]| {
            let mut out = Vec::new();
            etherparse::PacketBuilder::ethernet2(VM.0, [0xff; 6])
                .ipv4(src, [198, 18, 1, 1], 64)
                .udp(1000, 2000)
                .write(&mut out, b"payload")
                .unwrap();
            out
        };
        let s = sec();
        assert_eq!(
            s.check(VM, EtherType::Ipv4, &frame([198, 18, 1, 5])[14..]),
            Ok(())
        );
        assert_eq!(
            s.check(VM, EtherType::Ipv4, &frame([198, 18, 1, 7])[14..]),
            Err(DropReason::SpoofedIp)
        );
    }

    proptest! {
        /// No input panics, and a frame from a MAC the port does not own never passes.
        #[test]
        fn never_panics_never_passes_foreign_mac(
            et in prop_oneof![Just(0x0806u16), Just(0x0800), Just(0x86dd), any::<u16>()],
            l3 in proptest::collection::vec(any::<u8>(), 0..200),
            mac in any::<[u8; 6]>(),
        ) {
            let s = sec();
            let mac = MacAddr(mac);
            let r = s.check(mac, EtherType::from(et), &l3);
            if mac != VM && mac != PAIR_MAC {
                prop_assert_eq!(r, Err(DropReason::SpoofedMac));
            }
        }

        /// IPv4 from an address outside every pair never passes, whatever follows.
        #[test]
        fn foreign_ipv4_never_passes(
            a in any::<u32>(),
            proto in any::<u8>(),
            ports in any::<(u16, u16)>(),
        ) {
            let ip = Ipv4Addr::from(a);
            prop_assume!(ip != Ipv4Addr::new(198, 18, 1, 5) && !ip.is_unspecified());
            let r = sec().check(VM, EtherType::Ipv4, &ipv4(ip, proto, ports));
            prop_assert!(r.is_err());
        }
    }
}
