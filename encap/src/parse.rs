//! Whole-frame parsing: one pass from the Ethernet header down to the tunnel header, for
//! classification, tracing and flow hashing. Any bytes are accepted: a malformed layer
//! is an [`Error`] naming it, never a panic.

use core::net::IpAddr;

use crate::arp::{self, ArpRepr};
use crate::error::{Error, ErrorKind, Layer};
use crate::ethernet::{self, EtherType};
use crate::gre::{self, GreRepr};
use crate::ipv4::{self, protocol};
use crate::ipv6;
use crate::types::{GreKey, MacAddr, Vni};
use crate::udp;
use crate::vlan::{self, Tpid, VlanTag};
use crate::vxlan;
use crate::ETH_HLEN;

/// Most tags parsed (QinQ).
pub const MAX_TAGS: usize = 2;

/// Layer 2 of a frame: addresses, up to two tags, the EtherType after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2 {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// Tags, outermost first.
    pub tags: [Option<VlanTag>; MAX_TAGS],
    /// EtherType after the tags.
    pub ethertype: EtherType,
    /// Offset of the layer-3 header.
    pub l3_offset: usize,
}

impl L2 {
    /// Number of tags.
    pub fn tag_count(&self) -> usize {
        self.tags.iter().filter(|t| t.is_some()).count()
    }

    /// The outermost tag.
    pub fn outer_tag(&self) -> Option<VlanTag> {
        self.tags[0]
    }
}

/// Parses the Ethernet header and up to two tags. A third tag is
/// [`ErrorKind::Unsupported`]; VID 4095 is [`ErrorKind::BadValue`].
#[inline(always)]
pub fn parse_l2(data: &[u8]) -> Result<L2, Error> {
    // Built from locals in one go at the end: filling the struct field by field in memory
    // (an indexed tag array in a loop) made its later word-sized reads stall on store
    // forwarding.
    if data.len() < ETH_HLEN {
        return Err(Error::truncated(Layer::Ethernet, ETH_HLEN, data.len()));
    }
    let be16 = |at: usize| u16::from_be_bytes([data[at], data[at + 1]]);
    let tag_at = |tpid: Tpid, off: usize| -> Result<(VlanTag, u16), Error> {
        if data.len() < off + vlan::TAG_LEN + 2 {
            let need = off + vlan::TAG_LEN + 2;
            return Err(Error::truncated(Layer::Vlan, need, data.len()));
        }
        Ok((VlanTag::from_tci(tpid, be16(off + 2))?, be16(off + 4)))
    };
    let mut tags = [None; MAX_TAGS];
    let mut ethertype = be16(12);
    let mut l3_offset = ETH_HLEN;
    if let Some(tpid) = Tpid::from_value(ethertype) {
        let (outer, next) = tag_at(tpid, 12)?;
        tags[0] = Some(outer);
        ethertype = next;
        l3_offset += vlan::TAG_LEN;
        if let Some(tpid) = Tpid::from_value(ethertype) {
            let (inner, next) = tag_at(tpid, 16)?;
            tags[1] = Some(inner);
            ethertype = next;
            l3_offset += vlan::TAG_LEN;
            if Tpid::from_value(ethertype).is_some() {
                return Err(Error::new(Layer::Vlan, ErrorKind::Unsupported));
            }
        }
    }
    Ok(L2 {
        dst: ethernet::mac_at(data, 0),
        src: ethernet::mac_at(data, 6),
        tags,
        ethertype: ethertype.into(),
        l3_offset,
    })
}

/// Layer 3 summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    /// Not a protocol parsed here.
    Other,
    /// An Ethernet/IPv4 ARP packet.
    Arp(ArpRepr),
    /// IPv4 or IPv6.
    Ip {
        /// Source address.
        src: IpAddr,
        /// Destination address.
        dst: IpAddr,
        /// Upper-layer protocol (after IPv6 extension headers).
        protocol: u8,
        /// Offset of the upper-layer header in the frame (0 for a non-first fragment).
        l4_offset: usize,
        /// A fragment: no upper-layer header is parsed.
        fragment: bool,
    },
}

/// Layer 4 summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// None parsed.
    None,
    /// UDP ports.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// TCP ports.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// A GRE header.
    Gre(GreRepr),
}

/// A tunnel header recognised inside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    /// VXLAN on the given UDP port.
    Vxlan {
        /// The VNI.
        vni: Vni,
        /// Offset of the inner frame.
        inner_offset: usize,
    },
    /// GRE carrying Ethernet.
    Gre {
        /// The key.
        key: Option<GreKey>,
        /// Offset of the inner frame.
        inner_offset: usize,
    },
}

/// A whole frame's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Layer 2.
    pub l2: L2,
    /// Layer 3.
    pub l3: L3,
    /// Layer 4.
    pub l4: L4,
    /// VXLAN (on `vxlan_port`) or GRE/TEB, if present.
    pub tunnel: Option<Tunnel>,
}

/// Parses a whole frame, treating UDP to `vxlan_port` as VXLAN. Checksums are not
/// verified here (decapsulation does); lengths are.
pub fn parse(data: &[u8], vxlan_port: u16) -> Result<Parsed, Error> {
    let l2 = parse_l2(data)?;
    let mut out = Parsed {
        l2,
        l3: L3::Other,
        l4: L4::None,
        tunnel: None,
    };
    let l3 = &data[l2.l3_offset..];
    let (proto, l4_off, fragment) = match l2.ethertype {
        EtherType::Arp => {
            let a = arp::Packet::new_checked(l3)?;
            out.l3 = L3::Arp(ArpRepr::parse(&a)?);
            return Ok(out);
        }
        EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_checked(l3)?;
            if ip.version() != 4 {
                return Err(Error::new(Layer::Ipv4, ErrorKind::BadVersion));
            }
            let frag = ip.is_fragment();
            let (end, off) = (usize::from(ip.total_len()), ip.header_len());
            out.l3 = L3::Ip {
                src: ip.src().into(),
                dst: ip.dst().into(),
                protocol: ip.protocol(),
                l4_offset: if frag && ip.frag_offset() != 0 {
                    0
                } else {
                    l2.l3_offset + off
                },
                fragment: frag,
            };
            (ip.protocol(), (off, end), frag)
        }
        EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_checked(l3)?;
            if ip.version() != 6 {
                return Err(Error::new(Layer::Ipv6, ErrorKind::BadVersion));
            }
            let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
            let (proto, off, frag) = match ip.upper_layer() {
                Ok((p, off)) => (p, off, false),
                Err(Error {
                    kind: ErrorKind::Fragment,
                    ..
                }) => (ipv6::ext::FRAGMENT, 0, true),
                Err(e) => return Err(e),
            };
            out.l3 = L3::Ip {
                src: ip.src().into(),
                dst: ip.dst().into(),
                protocol: proto,
                l4_offset: if frag { 0 } else { l2.l3_offset + off },
                fragment: frag,
            };
            (proto, (off, end), frag)
        }
        _ => return Ok(out),
    };
    if fragment {
        return Ok(out);
    }
    let (off, end) = l4_off;
    let l4 = &l3[off..end];
    let l4_start = l2.l3_offset + off;
    match proto {
        protocol::UDP => {
            let u = udp::Packet::new_checked(l4)?;
            out.l4 = L4::Udp {
                src_port: u.src_port(),
                dst_port: u.dst_port(),
            };
            // Something on the VXLAN port that is not VXLAN is still a UDP datagram: the
            // summary says so rather than failing (decapsulation is where it is refused).
            if u.dst_port() == vxlan_port {
                let vni = vxlan::Packet::new_checked(u.payload())
                    .and_then(|v| vxlan::VxlanRepr::parse(&v, false));
                out.tunnel = vni.ok().map(|r| Tunnel::Vxlan {
                    vni: r.vni,
                    inner_offset: l4_start + udp::HEADER_LEN + vxlan::HEADER_LEN,
                });
            }
        }
        protocol::TCP => {
            if l4.len() < 20 {
                let layer = if l2.ethertype == EtherType::Ipv6 {
                    Layer::Ipv6
                } else {
                    Layer::Ipv4
                };
                // Both counted within the IP packet (Ethernet padding excluded).
                return Err(Error::truncated(layer, off + 20, end));
            }
            out.l4 = L4::Tcp {
                src_port: u16::from_be_bytes([l4[0], l4[1]]),
                dst_port: u16::from_be_bytes([l4[2], l4[3]]),
            };
        }
        protocol::GRE => {
            let g = gre::Packet::new_checked(l4)?;
            let r = GreRepr::parse(&g)?;
            out.l4 = L4::Gre(r);
            if r.protocol == EtherType::TransparentEthernetBridging {
                out.tunnel = Some(Tunnel::Gre {
                    key: r.key,
                    inner_offset: l4_start + r.buffer_len(),
                });
            }
        }
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::framed;
    use crate::tunnel::{v4_params, VxlanTemplate};
    use crate::types::VlanId;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    #[test]
    fn qinq_l2() {
        let base = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06];
        let mut f = framed(&base, 8, 0);
        vlan::push(&mut f, VlanTag::dot1q(VlanId::try_new(10).unwrap())).unwrap();
        let mut s = VlanTag::dot1q(VlanId::try_new(20).unwrap());
        s.tpid = Tpid::Dot1Ad;
        vlan::push(&mut f, s).unwrap();
        let l2 = parse_l2(f.data()).unwrap();
        assert_eq!(l2.tag_count(), 2);
        assert_eq!(l2.outer_tag(), Some(s));
        assert_eq!(l2.ethertype, EtherType::Arp);
        assert_eq!(l2.l3_offset, 22);
        // ARP body missing: the L2 parse is fine, the deep parse names ARP.
        assert_eq!(parse(f.data(), 4789).unwrap_err().layer, Layer::Arp);
    }

    #[test]
    fn vxlan_is_recognised() {
        let m = MacAddr([2, 0, 0, 0, 0, 1]);
        let t = VxlanTemplate::new(
            &v4_params(
                m,
                m,
                Ipv4Addr::new(198, 18, 0, 1),
                Ipv4Addr::new(198, 18, 0, 2),
            ),
            4789,
        )
        .unwrap();
        let inner = [0xffu8; 60];
        let mut f = framed(&inner, 64, 0);
        t.encap(&mut f, Vni::try_new(77).unwrap(), 1, 0).unwrap();
        let p = parse(f.data(), 4789).unwrap();
        assert_eq!(
            p.tunnel,
            Some(Tunnel::Vxlan {
                vni: Vni::try_new(77).unwrap(),
                inner_offset: 50
            })
        );
        assert!(matches!(p.l4, L4::Udp { dst_port: 4789, .. }));
        assert_eq!(parse(f.data(), 8472).unwrap().tunnel, None);
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse(&b, 4789);
        }
    }
}
