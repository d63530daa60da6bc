//! Ethernet II.
//!
//! ```text
//!  0                   6                  12        14
//! +-------------------+-------------------+---------+----------
//! | destination MAC   | source MAC        | type    | payload
//! +-------------------+-------------------+---------+----------
//! ```

use crate::error::{Error, Layer};
use crate::types::MacAddr;
use crate::ETH_HLEN;

/// Field offsets.
mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const TYPE: Range<usize> = 12..14;
}

/// An EtherType. Conversion from `u16` never fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800
    Ipv4,
    /// 0x0806
    Arp,
    /// 0x86dd
    Ipv6,
    /// 0x8100: 802.1Q customer tag (C-tag).
    Vlan,
    /// 0x88a8: 802.1ad service tag (S-tag).
    QinQ,
    /// 0x6558: Transparent Ethernet Bridging (GRE payload type for Ethernet).
    TransparentEthernetBridging,
    /// Anything else.
    Unknown(u16),
}

impl EtherType {
    /// True for the two tag protocol identifiers (0x8100, 0x88a8).
    #[inline]
    pub fn is_vlan_tpid(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

impl From<u16> for EtherType {
    #[inline]
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            0x6558 => EtherType::TransparentEthernetBridging,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    #[inline]
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::TransparentEthernetBridging => 0x6558,
            EtherType::Unknown(v) => v,
        }
    }
}

/// A view of an Ethernet II header at the start of `buffer`.
#[derive(Debug, Clone)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking its length; accessors may panic if it is
    /// shorter than 14 bytes. Use on frames this crate just emitted.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking it holds a whole header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let have = buffer.as_ref().len();
        if have < ETH_HLEN {
            return Err(Error::truncated(Layer::Ethernet, ETH_HLEN, have));
        }
        Ok(Packet { buffer })
    }

    /// Destination MAC.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::DST.start)
    }

    /// Source MAC.
    #[inline]
    pub fn src(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SRC.start)
    }

    /// The EtherType (or TPID, if the frame is tagged).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::TYPE];
        u16::from_be_bytes([b[0], b[1]]).into()
    }

    /// Everything after the 14-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[ETH_HLEN..]
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the destination MAC.
    #[inline]
    pub fn set_dst(&mut self, m: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&m.0);
    }

    /// Sets the source MAC.
    #[inline]
    pub fn set_src(&mut self, m: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&m.0);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buffer.as_mut()[field::TYPE].copy_from_slice(&u16::from(t).to_be_bytes());
    }

    /// Everything after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[ETH_HLEN..]
    }
}

/// Reads the MAC at `off` with one 6-byte copy (byte-wise assembly defeats store
/// forwarding when the address is later read as a word).
#[inline(always)]
pub(crate) fn mac_at(b: &[u8], off: usize) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[off..off + 6]);
    MacAddr(m)
}

/// A parsed Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// EtherType (or TPID of a first tag).
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of `p`.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Self {
        EthernetRepr {
            dst: p.dst(),
            src: p.src(),
            ethertype: p.ethertype(),
        }
    }

    /// Header length: 14.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        ETH_HLEN
    }

    /// Writes the header into `p`.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_dst(self.dst);
        p.set_src(self.src);
        p.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: [u8; 18] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0xfa, 0x16, 0x3e, 0x00, 0x00, 0x01, // src
        0x08, 0x06, // ARP
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(p.dst(), MacAddr::BROADCAST);
        assert_eq!(p.src(), MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]));
        assert_eq!(p.ethertype(), EtherType::Arp);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 18];
        buf[14..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let repr = EthernetRepr {
            dst: MacAddr::BROADCAST,
            src: MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]),
            ethertype: EtherType::Arp,
        };
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, GOLDEN);
    }

    #[test]
    fn truncated() {
        assert!(Packet::new_checked(&GOLDEN[..13]).is_err());
    }

    #[test]
    fn ethertype_roundtrip() {
        for v in [0x0800u16, 0x0806, 0x86dd, 0x8100, 0x88a8, 0x6558, 0x1234] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
    }
}
