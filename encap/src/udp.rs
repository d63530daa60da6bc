//! UDP (RFC 768).
//!
//! ```text
//! +---------------+---------------+---------------+---------------+
//! |          Source Port          |       Destination Port        |
//! |            Length             |           Checksum            |
//! +---------------+---------------+---------------+---------------+
//! ```

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::error::{Error, ErrorKind, Layer};
use crate::ipv4::protocol;

/// Header length.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const SRC: Range<usize> = 0..2;
    pub const DST: Range<usize> = 2..4;
    pub const LEN: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T> {
    buffer: T,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checks.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps after checking the header and that the length field is at least 8 and fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let have = buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::truncated(Layer::Udp, HEADER_LEN, have));
        }
        let p = Packet { buffer };
        let len = usize::from(p.len());
        if len < HEADER_LEN {
            return Err(Error::new(Layer::Udp, ErrorKind::BadLength));
        }
        if have < len {
            return Err(Error::truncated(Layer::Udp, len, have));
        }
        Ok(p)
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SRC])
    }
    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DST])
    }
    /// Length field (header included).
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LEN])
    }
    /// Checksum field (0 = none, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }
    /// The payload, bounded by the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
    /// Verifies the checksum against a pseudo-header sum (see [`checksum::pseudo_v4`]).
    #[inline]
    pub fn verify_checksum(&self, pseudo: u64) -> bool {
        let d = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::fold(checksum::accumulate(pseudo, d)) == 0xffff
    }
    /// Verifies the checksum over IPv4.
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.verify_checksum(checksum::pseudo_v4(src, dst, protocol::UDP, self.len()))
    }
    /// Verifies the checksum over IPv6.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.verify_checksum(checksum::pseudo_v6(
            src,
            dst,
            protocol::UDP,
            u32::from(self.len()),
        ))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LEN].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Computes and stores the checksum from a pseudo-header sum (0 is sent as 0xffff).
    #[inline]
    pub fn fill_checksum(&mut self, pseudo: u64) {
        self.set_checksum(0);
        let len = usize::from(self.len());
        let c = !checksum::fold(checksum::accumulate(pseudo, &self.buffer.as_ref()[..len]));
        self.set_checksum(checksum::nonzero(c));
    }
    /// Computes and stores the checksum over IPv4.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let pseudo = checksum::pseudo_v4(src, dst, protocol::UDP, self.len());
        self.fill_checksum(pseudo);
    }
    /// Computes and stores the checksum over IPv6.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let pseudo = checksum::pseudo_v6(src, dst, protocol::UDP, u32::from(self.len()));
        self.fill_checksum(pseudo);
    }
}

/// A parsed UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length (the length field minus 8).
    pub payload_len: u16,
}

impl UdpRepr {
    /// Reads a checked datagram (the checksum is the caller's business: it needs the
    /// IP pseudo-header).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Self {
        UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: p.len() - HEADER_LEN as u16,
        }
    }

    /// 8.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with a zero checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(self.payload_len.wrapping_add(HEADER_LEN as u16));
        p.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // 198.18.0.1:49152 -> 198.18.0.2:4789, payload "vsw!".
    const GOLDEN: [u8; 12] = [
        0xc0, 0x00, 0x12, 0xb5, 0x00, 0x0c, 0x00, 0x00, b'v', b's', b'w', b'!',
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&p),
            UdpRepr {
                src_port: 49152,
                dst_port: 4789,
                payload_len: 4
            }
        );
        assert_eq!(p.payload(), b"vsw!");
    }

    #[test]
    fn test_construct_with_checksum() {
        let mut b = GOLDEN;
        b[..8].fill(0xff);
        UdpRepr {
            src_port: 49152,
            dst_port: 4789,
            payload_len: 4,
        }
        .emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, GOLDEN);
        let (s, d) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum_v4(s, d);
        // Computed by hand: pseudo c612+0001+c612+0002+0011+000c, header c000+12b5+000c, data 7673+7721.
        let expect = !crate::checksum::fold(
            0xc612
                + 0x0001
                + 0xc612
                + 0x0002
                + 0x11
                + 0x0c
                + 0xc000
                + 0x12b5
                + 0x0c
                + 0x7673
                + 0x7721,
        );
        assert_eq!(p.checksum(), expect);
        assert!(p.verify_checksum_v4(s, d));
        assert!(!p.verify_checksum_v4(s, Ipv4Addr::new(198, 18, 0, 3)));
    }

    #[test]
    fn malformed() {
        assert!(Packet::new_checked(&GOLDEN[..7]).is_err());
        assert!(Packet::new_checked(&GOLDEN[..11]).is_err());
        let mut b = GOLDEN;
        b[5] = 4;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err().kind,
            ErrorKind::BadLength
        );
    }

    proptest! {
        #[test]
        fn roundtrip(s: u16, d: u16, data in proptest::collection::vec(any::<u8>(), 0..300), v6: bool, a: [u8; 16], b: [u8; 16]) {
            let r = UdpRepr { src_port: s, dst_port: d, payload_len: data.len() as u16 };
            let mut buf = vec![0u8; 8];
            buf.extend_from_slice(&data);
            let mut p = Packet::new_unchecked(&mut buf[..]);
            r.emit(&mut p);
            let (a6, b6): (Ipv6Addr, Ipv6Addr) = (a.into(), b.into());
            let (a4, b4) = (Ipv4Addr::new(a[0], a[1], a[2], a[3]), Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            if v6 { p.fill_checksum_v6(&a6, &b6) } else { p.fill_checksum_v4(a4, b4) }
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(UdpRepr::parse(&p), r);
            prop_assert_ne!(p.checksum(), 0);
            let ok = if v6 { p.verify_checksum_v6(&a6, &b6) } else { p.verify_checksum_v4(a4, b4) };
            prop_assert!(ok);
        }
    }
}
