//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! ```text
//!  0      2      4    5    6      8          14         18         24         28
//! +------+------+----+----+------+----------+----------+----------+----------+
//! | htype| ptype|hlen|plen| oper | sha      | spa      | tha      | tpa      |
//! +------+------+----+----+------+----------+----------+----------+----------+
//! ```
//!
//! Only hardware type 1 (Ethernet, hlen 6) with protocol IPv4 (plen 4) is handled; any
//! other combination is [`ErrorKind::Unsupported`].

use core::net::Ipv4Addr;

use crate::error::{Error, ErrorKind, Layer};
use crate::ethernet::{mac_at, EtherType};
use crate::types::MacAddr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// 1
    Request,
    /// 2
    Reply,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            o => Operation::Unknown(o),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> u16 {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// A view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T> {
    buffer: T,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

use crate::ipv4::ip4;

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without a length check.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps after checking it holds 28 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let have = buffer.as_ref().len();
        if have < PACKET_LEN {
            return Err(Error::truncated(Layer::Arp, PACKET_LEN, have));
        }
        Ok(Packet { buffer })
    }

    /// Hardware type (1 = Ethernet).
    pub fn hardware_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::HTYPE])
    }
    /// Protocol type.
    pub fn protocol_type(&self) -> EtherType {
        be16(&self.buffer.as_ref()[field::PTYPE]).into()
    }
    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// Operation.
    pub fn operation(&self) -> Operation {
        be16(&self.buffer.as_ref()[field::OPER]).into()
    }
    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SHA.start)
    }
    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ip4(&self.buffer.as_ref()[field::SPA])
    }
    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::THA.start)
    }
    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ip4(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the fixed fields for Ethernet/IPv4.
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        b[field::HTYPE].copy_from_slice(&1u16.to_be_bytes());
        b[field::PTYPE].copy_from_slice(&0x0800u16.to_be_bytes());
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }
    /// Sets the operation.
    pub fn set_operation(&mut self, op: Operation) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&u16::from(op).to_be_bytes());
    }
    /// Sets the sender hardware address.
    pub fn set_sender_mac(&mut self, m: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&m.0);
    }
    /// Sets the sender protocol address.
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }
    /// Sets the target hardware address.
    pub fn set_target_mac(&mut self, m: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&m.0);
    }
    /// Sets the target protocol address.
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request, reply or other.
    pub operation: Operation,
    /// Sender MAC.
    pub sender_mac: MacAddr,
    /// Sender IPv4 address.
    pub sender_ip: Ipv4Addr,
    /// Target MAC.
    pub target_mac: MacAddr,
    /// Target IPv4 address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Parses an Ethernet/IPv4 ARP packet; other hardware/protocol types are unsupported.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self, Error> {
        if p.hardware_type() != 1
            || p.protocol_type() != EtherType::Ipv4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(Error::new(Layer::Arp, ErrorKind::Unsupported));
        }
        Ok(ArpRepr {
            operation: p.operation(),
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        })
    }

    /// 28.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_ethernet_ipv4();
        p.set_operation(self.operation);
        p.set_sender_mac(self.sender_mac);
        p.set_sender_ip(self.sender_ip);
        p.set_target_mac(self.target_mac);
        p.set_target_ip(self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOLDEN: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // eth/ipv4 request
        0xfa, 0x16, 0x3e, 0x00, 0x00, 0x01, 198, 18, 0, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 198, 18, 0, 2, // target
    ];

    fn golden_repr() -> ArpRepr {
        ArpRepr {
            operation: Operation::Request,
            sender_mac: MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]),
            sender_ip: Ipv4Addr::new(198, 18, 0, 1),
            target_mac: MacAddr::ZERO,
            target_ip: Ipv4Addr::new(198, 18, 0, 2),
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p).unwrap(), golden_repr());
    }

    #[test]
    fn test_construct() {
        let mut b = [0xffu8; 28];
        golden_repr().emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, GOLDEN);
    }

    #[test]
    fn unsupported_and_truncated() {
        let mut g = GOLDEN;
        g[1] = 6; // IEEE 802 hardware type
        assert_eq!(
            ArpRepr::parse(&Packet::new_checked(&g[..]).unwrap())
                .unwrap_err()
                .kind,
            ErrorKind::Unsupported
        );
        assert!(Packet::new_checked(&GOLDEN[..27]).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(op: u16, sm: [u8; 6], si: [u8; 4], tm: [u8; 6], ti: [u8; 4]) {
            let r = ArpRepr {
                operation: op.into(),
                sender_mac: MacAddr(sm), sender_ip: si.into(),
                target_mac: MacAddr(tm), target_ip: ti.into(),
            };
            let mut b = [0u8; 28];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(ArpRepr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
