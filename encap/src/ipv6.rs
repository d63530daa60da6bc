//! IPv6 (RFC 8200), with extension headers walked to find the upper layer.
//!
//! ```text
//! +-------+---------------+---------------------------------------+
//! |Version| Traffic Class |              Flow Label               |
//! +-------+---------------+-------+---------------+---------------+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-------------------------------+---------------+---------------+
//! |                 Source Address (16 bytes)                     |
//! |              Destination Address (16 bytes)                   |
//! +---------------------------------------------------------------+
//! ```

use core::net::Ipv6Addr;

use crate::error::{Error, ErrorKind, Layer};

/// Fixed header length.
pub const HEADER_LEN: usize = 40;
/// Most extension headers walked before giving up (bounds the work per packet).
pub const MAX_EXT_HEADERS: usize = 8;

/// Extension header numbers (RFC 8200 §4, IANA).
pub mod ext {
    /// Hop-by-Hop Options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing.
    pub const ROUTING: u8 = 43;
    /// Fragment.
    pub const FRAGMENT: u8 = 44;
    /// Authentication Header (length in 4-byte units).
    pub const AUTH: u8 = 51;
    /// No Next Header.
    pub const NO_NEXT: u8 = 59;
    /// Destination Options.
    pub const DEST_OPTS: u8 = 60;
    /// Mobility.
    pub const MOBILITY: u8 = 135;
    /// Host Identity Protocol.
    pub const HIP: u8 = 139;
    /// Shim6.
    pub const SHIM6: u8 = 140;
}

mod field {
    use core::ops::Range;
    pub const VER_TC_FL: Range<usize> = 0..4;
    pub const LEN: Range<usize> = 4..6;
    pub const NXT: usize = 6;
    pub const HOP: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T> {
    buffer: T,
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checks.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps after checking that the fixed header and the payload length fit.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let have = buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::truncated(Layer::Ipv6, HEADER_LEN, have));
        }
        let p = Packet { buffer };
        let total = HEADER_LEN + usize::from(p.payload_len());
        if have < total {
            return Err(Error::truncated(Layer::Ipv6, total, have));
        }
        Ok(p)
    }

    fn word0(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VER_TC_FL];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// Version (6).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.word0() >> 28) as u8
    }
    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }
    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }
    /// Payload length (extension headers included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LEN];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Next header of the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT]
    }
    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP]
    }
    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC])
    }
    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST])
    }
    /// The payload (after the fixed header), bounded by the payload length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walks the extension headers and returns the upper-layer protocol and the offset of
    /// its header from the start of the packet. A Hop-by-Hop header that is not first and a
    /// Routing header with segments left are [`ErrorKind::Unsupported`]. A fragment (any Fragment header: atomic
    /// fragments included, tunnels never reassemble) is [`ErrorKind::Fragment`]; a chain
    /// longer than [`MAX_EXT_HEADERS`] is [`ErrorKind::Unsupported`].
    #[inline]
    pub fn upper_layer(&self) -> Result<(u8, usize), Error> {
        let end = HEADER_LEN + usize::from(self.payload_len());
        let b = &self.buffer.as_ref()[..end];
        let mut next = self.next_header();
        let mut off = HEADER_LEN;
        for _ in 0..=MAX_EXT_HEADERS {
            let len = match next {
                ext::HOP_BY_HOP
                | ext::ROUTING
                | ext::DEST_OPTS
                | ext::MOBILITY
                | ext::HIP
                | ext::SHIM6 => {
                    if b.len() < off + 2 {
                        return Err(Error::truncated(Layer::Ipv6, off + 2, b.len()));
                    }
                    (usize::from(b[off + 1]) + 1) * 8
                }
                ext::AUTH => {
                    if b.len() < off + 2 {
                        return Err(Error::truncated(Layer::Ipv6, off + 2, b.len()));
                    }
                    (usize::from(b[off + 1]) + 2) * 4
                }
                ext::FRAGMENT => return Err(Error::new(Layer::Ipv6, ErrorKind::Fragment)),
                _ => return Ok((next, off)),
            };
            if b.len() < off + len {
                return Err(Error::truncated(Layer::Ipv6, off + len, b.len()));
            }
            // RFC 8200 §4.1: Hop-by-Hop Options only directly after the fixed header. §4.4:
            // a Routing header with segments left is not for this node yet (the kernel does
            // not deliver it locally); and the upper-layer checksum would then use the
            // final destination, not this one.
            if (next == ext::HOP_BY_HOP && off != HEADER_LEN)
                || (next == ext::ROUTING && b[off + 3] != 0)
            {
                return Err(Error::new(Layer::Ipv6, ErrorKind::Unsupported));
            }
            next = b[off];
            off += len;
        }
        Err(Error::new(Layer::Ipv6, ErrorKind::Unsupported))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, traffic class and flow label.
    #[inline]
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        let w = 6u32 << 28 | u32::from(tc) << 20 | (flow & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FL].copy_from_slice(&w.to_be_bytes());
    }
    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LEN].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NXT] = v;
    }
    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP] = v;
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }
    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }
}

/// A parsed IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length.
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Parses a checked packet; version 6 required.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self, Error> {
        if p.version() != 6 {
            return Err(Error::new(Layer::Ipv6, ErrorKind::BadVersion));
        }
        Ok(Ipv6Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    /// 40.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_version_tc_flow(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src(&self.src);
        p.set_dst(&self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn golden() -> Vec<u8> {
        let mut v = vec![
            0x60, 0x12, 0x34, 0x56, // v6, tc 0x01, flow 0x23456
            0x00, 0x18, 0x00, 0x40, // len 24, next HBH, hop 64
        ];
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        // Hop-by-hop: next = dest opts (60), len 0 (8 bytes), PadN.
        v.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        // Destination options: next = UDP, len 0.
        v.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        // UDP header.
        v.extend_from_slice(&[0x30, 0x39, 0x12, 0xb5, 0x00, 0x08, 0x00, 0x00]);
        v
    }

    #[test]
    fn test_deconstruct() {
        let g = golden();
        let p = Packet::new_checked(&g[..]).unwrap();
        let r = Ipv6Repr::parse(&p).unwrap();
        assert_eq!(r.traffic_class, 0x01);
        assert_eq!(r.flow_label, 0x23456);
        assert_eq!(r.payload_len, 24);
        assert_eq!(r.next_header, 0);
        assert_eq!(r.src, "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.upper_layer().unwrap(), (17, 56));
    }

    #[test]
    fn test_construct() {
        let g = golden();
        let r = Ipv6Repr::parse(&Packet::new_checked(&g[..]).unwrap()).unwrap();
        let mut b = g.clone();
        b[..40].fill(0);
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, g);
    }

    #[test]
    fn fragments_and_truncation() {
        let mut g = golden();
        g[48] = ext::FRAGMENT; // dest opts says: next is a fragment header
        assert_eq!(
            Packet::new_checked(&g[..])
                .unwrap()
                .upper_layer()
                .unwrap_err()
                .kind,
            ErrorKind::Fragment
        );
        let mut g = golden();
        g[41] = 10; // hop-by-hop claims 88 bytes
        assert!(matches!(
            Packet::new_checked(&g[..])
                .unwrap()
                .upper_layer()
                .unwrap_err()
                .kind,
            ErrorKind::Truncated { .. }
        ));
        let g = golden();
        assert!(Packet::new_checked(&g[..63]).is_err());
    }

    #[test]
    fn routing_with_segments_left_and_late_hop_by_hop_are_refused() {
        // Hop-by-hop (40) -> Routing (48) -> UDP, payload 24.
        let mut g = golden();
        g[40] = ext::ROUTING;
        g[48] = 17;
        g[50] = 0; // routing type
        g[51] = 0; // segments left
        assert_eq!(
            Packet::new_checked(&g[..]).unwrap().upper_layer().unwrap(),
            (17, 56)
        );
        g[51] = 1;
        assert_eq!(
            Packet::new_checked(&g[..])
                .unwrap()
                .upper_layer()
                .unwrap_err()
                .kind,
            ErrorKind::Unsupported
        );
        // Destination options first, then hop-by-hop: refused.
        let mut g = golden();
        g[6] = ext::DEST_OPTS;
        g[40] = ext::HOP_BY_HOP;
        assert_eq!(
            Packet::new_checked(&g[..])
                .unwrap()
                .upper_layer()
                .unwrap_err()
                .kind,
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn ext_chain_is_bounded() {
        let mut v = golden()[..40].to_vec();
        let n = MAX_EXT_HEADERS + 2;
        v[4..6].copy_from_slice(&((n * 8) as u16).to_be_bytes());
        for _ in 0..n {
            v.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(
            Packet::new_checked(&v[..])
                .unwrap()
                .upper_layer()
                .unwrap_err()
                .kind,
            ErrorKind::Unsupported
        );
    }

    proptest! {
        #[test]
        fn roundtrip(s: [u8; 16], d: [u8; 16], nh: u8, len in 0u16..512, hop: u8, tc: u8, fl in 0u32..0x10_0000) {
            let r = Ipv6Repr { src: s.into(), dst: d.into(), next_header: nh, payload_len: len, hop_limit: hop, traffic_class: tc, flow_label: fl };
            let mut b = vec![0u8; 40 + usize::from(len)];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(Ipv6Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn upper_layer_never_panics(b in proptest::collection::vec(any::<u8>(), 40..200)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = p.upper_layer();
            }
        }
    }
}
